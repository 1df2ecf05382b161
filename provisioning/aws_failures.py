"""What boto3 raises when AWS fails, for the adapters to map to the port's CloudError in one way.

`ClientError` is AWS's own error answer (a code and a message). `BotoCoreError` covers the transport (timeouts,
connection errors, retries used up). `ResponseParserError` is neither: it is raised when an answer is not AWS's
XML or JSON at all, such as an HTML "500 Internal Server Error" page from a proxy or load balancer in front of the
endpoint (or from the simulator), and it would escape an adapter that catches the other two.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

TRANSPORT_FAILURES: tuple[type[Exception], ...] = (BotoCoreError, ResponseParserError)
AWS_FAILURES: tuple[type[Exception], ...] = (ClientError, *TRANSPORT_FAILURES)
