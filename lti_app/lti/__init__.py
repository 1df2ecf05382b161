"""LTI 1.3 on the tool side: OIDC login, hardened launch, JWKS, registration, deep linking."""
