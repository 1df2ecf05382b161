/* Post the id_token to the tool at once (OIDC form_post). */
document.getElementById("demo-autosubmit").submit();
