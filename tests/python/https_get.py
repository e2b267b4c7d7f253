"""GET an HTTPS URL as a browser trusting the lab CA would, optionally
presenting a client certificate (tests/monitor.rs).

Usage: https_get.py TLS_DIR URL [IDENTITY]

TLS_DIR holds ca.crt and IDENTITY.crt/.key. Prints the body, or
`HTTP STATUS BODY` for an error status.
"""

import os
import ssl
import sys
import urllib.error
import urllib.request


def main():
    tls_dir, url = sys.argv[1], sys.argv[2]
    context = ssl.create_default_context(cafile=os.path.join(tls_dir, "ca.crt"))
    if len(sys.argv) > 3:
        identity = sys.argv[3]
        context.load_cert_chain(
            os.path.join(tls_dir, identity + ".crt"), os.path.join(tls_dir, identity + ".key")
        )
    try:
        print(urllib.request.urlopen(url, context=context, timeout=10).read().decode())
    except urllib.error.HTTPError as error:
        print("HTTP", error.code, error.read().decode())


if __name__ == "__main__":
    main()
