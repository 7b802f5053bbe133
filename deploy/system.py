"""Ensure what the local stack needs from the operating system.

PostgreSQL with its server headers, PostGIS, Mosquitto and a build toolchain come from the
distribution's packages; TimescaleDB, which Debian 12 does not package, is built from Debian's
source package of the next release through a private apt configuration, so the system's own
apt sources stay untouched. Every step checks first and does nothing when the work is done.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from deploy.errors import SystemSetupError
from deploy.process import tail

log = logging.getLogger(__name__)

SERVICE_USER = "stadspuls"
TIMESCALEDB_SUITE = "trixie"
DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
PG_ROOT = Path("/usr/lib/postgresql")


@dataclass(frozen=True)
class Postgres:
    """Where one installed PostgreSQL major version keeps its programs."""

    major: int

    @property
    def bindir(self) -> Path:
        return PG_ROOT / str(self.major) / "bin"

    @property
    def pg_config(self) -> Path:
        return self.bindir / "pg_config"

    def sharedir(self) -> Path:
        return Path(_output([str(self.pg_config), "--sharedir"]))

    def has_extension(self, name: str) -> bool:
        if not self.pg_config.exists():
            return False
        return (self.sharedir() / "extension" / f"{name}.control").exists()


def ensure_system(*, debian_mirror: str | None = None) -> Postgres:
    """Install whatever is missing and return the PostgreSQL to run.

    Args:
        debian_mirror: archive URI to fetch the TimescaleDB source from; by default the
            first Debian archive named in the system's apt sources.

    Returns:
        The PostgreSQL installation, with PostGIS and TimescaleDB available to it.
    """
    postgres = installed_postgres()
    if postgres is None:
        _apt_install(["postgresql"])
        postgres = installed_postgres()
        if postgres is None:
            raise SystemSetupError("PostgreSQL was installed but no server binary was found")
    wanted = [
        f"postgresql-{postgres.major}",
        f"postgresql-server-dev-{postgres.major}",
        f"postgresql-{postgres.major}-postgis-3",
        "mosquitto",
        "mosquitto-dev",  # with libmosquitto-dev: headers of deploy/mosquitto_publisher.c
        "libmosquitto-dev",
        "cmake",
        "gcc",
        "make",
        "libssl-dev",
        "dpkg-dev",
    ]
    missing = missing_packages(wanted)
    if missing:
        _apt_install(missing)
    else:
        log.info("system packages present", extra={"action": "packages_present"})
    if os.geteuid() == 0:
        ensure_service_user()
    ensure_timescaledb(postgres, debian_mirror=debian_mirror)
    return postgres


def installed_postgres() -> Postgres | None:
    """The newest PostgreSQL major version whose server is installed, if any."""
    majors = [
        int(p.parent.parent.name)
        for p in PG_ROOT.glob("*/bin/postgres")
        if p.parent.parent.name.isdigit()
    ]
    return Postgres(max(majors)) if majors else None


def missing_packages(names: list[str]) -> list[str]:
    """The names among `names` that dpkg does not report as installed."""
    if shutil.which("dpkg-query") is None:
        raise SystemSetupError(
            "this is not a Debian or Ubuntu system; install PostgreSQL with PostGIS and "
            "TimescaleDB, and Mosquitto, by hand"
        )
    missing = []
    for name in names:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${db:Status-Status}", name],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.stdout.strip() != "installed":
            missing.append(name)
    return missing


def ensure_service_user() -> str:
    """Create the unprivileged account the services run as when started by root."""
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        log.info("creating system user %s", SERVICE_USER, extra={"action": "user_created"})
        _run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
              SERVICE_USER])
    return SERVICE_USER


def ensure_timescaledb(postgres: Postgres, *, debian_mirror: str | None = None) -> None:
    """Build and install TimescaleDB (Apache edition) unless the server already has it."""
    if postgres.has_extension("timescaledb"):
        log.info("TimescaleDB present", extra={"action": "timescaledb_present"})
        return
    mirror = debian_mirror or debian_archive_uri()
    log.info(
        "TimescaleDB missing: building it from Debian's %s source package",
        TIMESCALEDB_SUITE,
        extra={"action": "timescaledb_build"},
    )
    with tempfile.TemporaryDirectory(prefix="stadspuls-timescaledb-") as tmp:
        build_log = Path(tmp) / "build.log"
        log.info("fetching the source package", extra={"action": "timescaledb_fetch"})
        source = _fetch_timescaledb_source(Path(tmp), mirror, build_log)
        log.info("configuring %s (Apache edition)", source.name,
                 extra={"action": "timescaledb_configure"})
        _run([
            "./bootstrap",
            "-DAPACHE_ONLY=ON",
            "-DREGRESS_CHECKS=OFF",
            "-DTAP_CHECKS=OFF",
            "-DWARNINGS_AS_ERRORS=OFF",
            f"-DPG_CONFIG={postgres.pg_config}",
        ], cwd=source, output=build_log)
        log.info("compiling and installing (about 15 s on two cores)",
                 extra={"action": "timescaledb_compile"})
        _run(["make", "-C", "build", f"-j{os.cpu_count() or 1}", "install"], cwd=source,
             output=build_log)
    if not postgres.has_extension("timescaledb"):
        raise SystemSetupError("TimescaleDB was built but its control file is not installed")
    log.info("TimescaleDB installed", extra={"action": "timescaledb_installed"})


def debian_archive_uri() -> str:
    """The first Debian archive the system's apt sources name (not the security archive)."""
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        uri = _uri_from_deb822(text) if path.suffix == ".sources" else _uri_from_one_line(text)
        if uri:
            return uri
    raise SystemSetupError(
        "no Debian archive found in the apt sources; pass --debian-mirror "
        "(or set STADSPULS_DEBIAN_MIRROR)"
    )


def _uri_from_deb822(text: str) -> str | None:
    for stanza in re.split(r"\n\s*\n", text):
        fields = {
            key.strip().lower(): value.strip()
            for key, _, value in (
                line.partition(":") for line in stanza.splitlines()
                if ":" in line and not line.lstrip().startswith("#")
            )
        }
        if _is_main_archive(fields.get("uris", ""), fields.get("suites", "")):
            return fields["uris"].split()[0]
    return None


def _uri_from_one_line(text: str) -> str | None:
    for line in text.splitlines():
        parts = re.sub(r"\[[^]]*\]", "", line).split()
        if len(parts) >= 3 and parts[0] in ("deb", "deb-src") and _is_main_archive(
            parts[1], parts[2]
        ):
            return parts[1]
    return None


def _is_main_archive(uris: str, suites: str) -> bool:
    return "debian" in uris and "security" not in uris and "security" not in suites


def _fetch_timescaledb_source(workdir: Path, mirror: str, output: Path) -> Path:
    lists = workdir / "lists"
    (lists / "partial").mkdir(parents=True)
    sources = workdir / "sources.list"
    keyring = DEFAULT_KEYRING if Path(DEFAULT_KEYRING).exists() else None
    signed = f"[signed-by={keyring}] " if keyring else ""
    sources.write_text(f"deb-src {signed}{mirror} {TIMESCALEDB_SUITE} main\n")
    apt = [
        "apt-get", "-q",
        f"-oDir::Etc::SourceList={sources}",
        "-oDir::Etc::SourceParts=/dev/null",
        f"-oDir::State::Lists={lists}",
        "-oAPT::Sandbox::User=root",
    ]
    _run([*apt, "update"], output=output)
    _run([*apt, "source", "timescaledb"], cwd=workdir, output=output)
    unpacked = [p for p in workdir.glob("timescaledb-*") if p.is_dir()]
    if not unpacked:
        raise SystemSetupError("apt-get source timescaledb produced no source tree")
    return unpacked[0]


def _apt_install(packages: list[str]) -> None:
    if os.geteuid() != 0:
        raise SystemSetupError(
            "missing system packages: " + " ".join(packages)
            + "; run as root, or install them with: sudo apt-get install " + " ".join(packages)
        )
    log.info("installing %s", " ".join(packages), extra={"action": "packages_install"})
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "-q", "update"], env=env)
    _run(["apt-get", "-q", "-y", "--no-install-recommends", "install", *packages], env=env)


def _run(
    args: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
    output: Path | None = None,
) -> None:
    """Run a setup command; its output goes to the terminal, or to `output` if given."""
    try:
        if output is None:
            subprocess.run(args, cwd=cwd, env=env, check=True)
            return
        with output.open("ab") as out:
            subprocess.run(args, cwd=cwd, env=env, check=True, stdout=out,
                           stderr=subprocess.STDOUT)
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = f"\n{tail(output, 30)}" if output is not None else ""
        raise SystemSetupError(f"{' '.join(args[:3])} failed: {exc}{detail}") from exc



def _output(args: list[str]) -> str:
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()
