"""Debian's slapd on free 127.0.0.1 ports, seeded here: ldaps with a test CA, and ldap://
with StartTLS, one service account, people under ``ou=people`` and nobody under
``ou=empty``.

The configuration (cn=config) and the directory are made with ``slapadd`` before slapd
starts, in a directory of the caller's; slapd runs in the foreground and is stopped after.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.tls_files import Pem, make_ca, make_leaf

SLAPD = "/usr/sbin/slapd"
SUFFIX = "dc=codequal,dc=test"
SERVICE_DN = f"cn=svc,{SUFFIX}"
PEOPLE_DN = f"ou=people,{SUFFIX}"
EMPTY_DN = f"ou=empty,{SUFFIX}"


class LdapStartError(RuntimeError):
    """slapd did not start; the message carries its output."""


@dataclass(frozen=True)
class LdapServer:
    ldaps_url: str
    starttls_url: str
    ca: Pem
    bind_dn: str
    password: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(workdir: Path, cert: Pem, ca: Pem) -> str:
    return f"""dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {workdir}/slapd.pid
olcTLSCACertificateFile: {ca.cert}
olcTLSCertificateFile: {cert.cert}
olcTLSCertificateKeyFile: {cert.key}

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {SUFFIX}
olcDbDirectory: {workdir}/data
olcDbMaxSize: 16777216
olcAccess: {{0}}to attrs=userPassword by anonymous auth by * none
olcAccess: {{1}}to * by users read by * none
"""


def _directory(password: str) -> str:
    return f"""dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
dc: codequal
o: CodeQual test

dn: {SERVICE_DN}
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: svc
userPassword: {password}

dn: {PEOPLE_DN}
objectClass: organizationalUnit
ou: people

dn: uid=alice,{PEOPLE_DN}
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Example

dn: {EMPTY_DN}
objectClass: organizationalUnit
ou: empty
"""


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def ldap_server(workdir: Path) -> Iterator[LdapServer]:
    if not Path(SLAPD).exists() or shutil.which("slapadd") is None:
        raise LdapStartError("slapd is not installed (apt-get install slapd ldap-utils)")
    ca = make_ca(workdir / "ca", "CodeQual Test Directory CA")
    cert = make_leaf(workdir / "tls", ca, ["127.0.0.1", "localhost"])
    password = secrets.token_urlsafe(12)
    config_dir = workdir / "slapd.d"
    config_dir.mkdir()
    (workdir / "data").mkdir()
    (workdir / "config.ldif").write_text(_config(workdir, cert, ca))
    (workdir / "directory.ldif").write_text(_directory(password))
    for args in (
        ["slapadd", "-n", "0", "-F", str(config_dir), "-l", str(workdir / "config.ldif")],
        ["slapadd", "-n", "1", "-F", str(config_dir), "-l", str(workdir / "directory.ldif")],
    ):
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise LdapStartError(f"{' '.join(args[:3])} failed: {done.stderr[-2000:]}")
    log = workdir / "slapd.log"
    last = ""
    for _ in range(3):
        ldaps, plain = _free_port(), _free_port()
        urls = f"ldaps://127.0.0.1:{ldaps}/ ldap://127.0.0.1:{plain}/"
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [SLAPD, "-F", str(config_dir), "-h", urls, "-d", "0"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and process.poll() is None:
                if _listening(ldaps) and _listening(plain):
                    yield LdapServer(
                        f"ldaps://127.0.0.1:{ldaps}",
                        f"ldap://127.0.0.1:{plain}",
                        ca,
                        SERVICE_DN,
                        password,
                    )
                    return
                time.sleep(0.1)
            last = log.read_text(errors="replace")[-2000:]
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    raise LdapStartError(f"slapd did not start:\n{last}")
