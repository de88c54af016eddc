"""A throwaway certificate authority for TLS tests, made by the openssl CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path

from central.mosquitto import TlsFiles


def openssl(*args: str | Path, cwd: Path) -> None:
    """Run ``openssl ARGS`` in `cwd`; CalledProcessError when it fails."""
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(folder: Path) -> TlsFiles:
    """A CA and a server certificate for 127.0.0.1 and localhost (valid 2 days) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl(
        "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=Test CA", cwd=folder
    )
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=folder)
    (folder / "server.ext").write_text(
        "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n"
    )
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "server.ext", cwd=folder,
    )  # fmt: skip
    return TlsFiles(folder / "ca.crt", folder / "server.crt", folder / "server.key")
