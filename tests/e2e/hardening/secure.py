"""Secure execution: a setuid-root client ignores the environment and the user's config files
(issue 5 item 10a, issue 15). Needs real root: the case re-executes itself as root in a mount +
network namespace without a user namespace, so that uid 65534 and the setuid bit mean what
they mean on the host; elsewhere it reports the fact `skipped` and runs nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from common import (HERE, PORT, REFUSED_FIRST, H, World, b, build, fact, flag, note, run)

AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


def _secure_possible() -> str:
    if os.geteuid() != 0:
        return "needs root (a setuid-root binary run by uid 65534)"
    if not shutil.which("setpriv"):
        return "setpriv(1) not found"
    uid_map = Path("/proc/self/uid_map").read_text().split()
    if uid_map[:3] != ["0", "0", "4294967295"]:
        return f"not in the initial user namespace (uid_map {uid_map[:3]})"
    return ""


def _as_real_root(case: str) -> bool:
    """Runs `case` again as real root in a mount + network namespace without a user namespace;
    `False` (after reporting the skip) when that is impossible here. Returns only inside it."""
    why = _secure_possible()
    if why and not H.in_namespace():
        fact("skipped", why)
        return False
    build(["hard_secure"])
    if not H.in_namespace():
        env = dict(os.environ)
        env[H.NS_MARK] = H.ns_ids()
        sys.stdout.flush()
        os.execvpe("unshare", ["unshare", "-mn", "--", sys.executable, str(HERE), "run", case],
                   env)
    return True


def _secure_bins(w: World, tmp_mode: int) -> tuple[Path, Path, Path]:
    """A directory for the case (`tmp_mode`), a setuid-root copy of hard_secure and a plain one."""
    tmp = w.workdir / "secure"
    tmp.mkdir()
    os.chmod(w.workdir, 0o755)
    os.chmod(tmp, tmp_mode)
    suid, plain_bin = tmp / "hard_secure_suid", tmp / "hard_secure_nosuid"
    shutil.copy(b("hard_secure"), suid)
    shutil.copy(b("hard_secure"), plain_bin)
    os.chown(suid, 0, 0)
    os.chmod(suid, 0o4755)
    os.chmod(plain_bin, 0o755)
    return tmp, suid, plain_bin


def case_secure() -> None:
    """Item 10a: AT_SECURE. A setuid-root copy of a client linked against the library, run by
    uid 65534 (setpriv), with DNSFO_DISABLE=1, DNSFO_LOG=debug, DNSFO_LOG_FILE, DNSFO_STATS=1, a
    bad DNSFO_ATTEMPT_DELAY_MS, DNSFO_CACHE_DIR and DNSFO_NAMESERVER (run `secure`, then the
    facts log_file_exists and cache_dir_exists). Controls: the same binary without the setuid
    bit, with DNSFO_DISABLE=1 (run `control-disable`) and with the others (run `control-log`,
    then log_file_exists)."""
    if not _as_real_root("secure"):
        return
    with World({"svc": REFUSED_FIRST}) as w:
        tmp, suid, plain_bin = _secure_bins(w, 0o1777)
        log, cache = tmp / "secure.log", tmp / "cache"
        hostile = {"DNSFO_DISABLE": "1", "DNSFO_LOG": "debug", "DNSFO_LOG_FILE": str(log),
                   "DNSFO_STATS": "1", "DNSFO_ATTEMPT_DELAY_MS": "abc",
                   "DNSFO_CACHE_DIR": str(cache), "DNSFO_NAMESERVER": "127.0.0.9"}
        run("secure", [*AS_NOBODY, str(suid), "svc", str(PORT)], preload=False, env=hostile,
            timeout=10)
        note("secure", log_file=log, log_file_exists=flag(log.exists()), cache_dir=cache,
             cache_dir_exists=flag(cache.exists()))
        run("control-disable", [*AS_NOBODY, str(plain_bin), "svc", str(PORT)], preload=False,
            env={"DNSFO_DISABLE": "1"}, timeout=10)
        env = {k: v for k, v in hostile.items() if k != "DNSFO_DISABLE"}
        run("control-log", [*AS_NOBODY, str(plain_bin), "svc", str(PORT)], preload=False,
            env=env, timeout=10)
        note("control-log", log_file=log, log_file_exists=flag(log.exists()))


def case_secure_conf() -> None:
    """Issue 15: config files under AT_SECURE. The setuid-root client run by uid 65534 with a
    root-owned, not world-writable /etc/dnsfo.conf saying `disable = yes` (run etc-honoured); the
    same file world-writable (run etc-world-writable) and then another user's (run etc-not-root),
    both times with the user's file and DNSFO_CONFIG, both saying `disable = yes`. Control:
    without the setuid bit, the user's own file (run control-user-file)."""
    if not _as_real_root("secure_conf"):
        return
    with World({"svc": REFUSED_FIRST}) as w:
        tmp, suid, plain_bin = _secure_bins(w, 0o755)
        # The user's files, owned by the user (uid 65534), each saying disable = yes.
        xdg = tmp / "xdg"
        (xdg / "dnsfo").mkdir(parents=True)
        for f in (xdg / "dnsfo" / "config", tmp / "extra.conf"):
            f.write_text("disable = yes\n")
            os.chown(f, 65534, 65534)
            os.chmod(f, 0o600)
        for d in (xdg, xdg / "dnsfo"):
            os.chown(d, 65534, 65534)
        user_env = {"XDG_CONFIG_HOME": str(xdg), "DNSFO_CONFIG": str(tmp / "extra.conf")}
        # A copy of /etc (with the scenario's hosts file) with a dnsfo.conf, over /etc.
        etc = tmp / "etc"
        subprocess.run(["cp", "-a", "/etc/.", str(etc)], check=True, capture_output=True)
        conf = etc / "dnsfo.conf"
        conf.write_text("# the host's dnsfo settings\ndisable = yes\n")
        os.chown(conf, 0, 0)
        os.chmod(conf, 0o644)
        subprocess.run(["mount", "--bind", str(etc), "/etc"], check=True)

        def suid_run(variant: str, env: dict[str, str]) -> None:
            run(variant, [*AS_NOBODY, str(suid), "svc", str(PORT)], preload=False, env=env,
                timeout=10)

        suid_run("etc-honoured", {})
        os.chmod(conf, 0o666)
        suid_run("etc-world-writable", user_env)
        os.chmod(conf, 0o644)
        os.chown(conf, 65534, 65534)
        suid_run("etc-not-root", user_env)
        run("control-user-file", [*AS_NOBODY, str(plain_bin), "svc", str(PORT)], preload=False,
            env={"XDG_CONFIG_HOME": str(xdg)}, timeout=10)


CASES = {"secure": case_secure, "secure_conf": case_secure_conf}
