"""Registry access (distribution-spec): :mod:`.auth` (challenges, tokens) and
:mod:`.client` (the HTTP client). Importing this package does not import requests."""
