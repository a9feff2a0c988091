"""``logq security init --zookeeper`` and ``logq security zk-acls`` with ZooKeeper digest credentials,
against a real ZooKeeper: the first admin of a cluster made with ACLs, ACLs given afterwards to a cluster
made without them, and one-line refusals."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner, Result
from kazoo.exceptions import NoAuthError

from logq.coordinator.zk_auth import DIGEST_ENV
from logq.coordinator.zk_layout import split_connect
from logq.permissions import write_private
from logq_cli.main import main
from tests.commands.test_admin_cli import assert_one_line_error
from tests.coordinator.test_zookeeper import raw_client


def cli(*args: str, stdin: str = "", digest: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin, env={DIGEST_ENV: digest})


def test_a_cluster_made_without_acls_gets_them_and_then_refuses_strangers(
    zk_connect: str, tmp_path: Path
) -> None:
    made = cli("security", "init", "--zookeeper", zk_connect, "--admin", "root", stdin="root-pw\n")
    assert made.exit_code == 0, made.output
    listed = cli("security", "zk-acls", "--zookeeper", zk_connect, digest="logq:zk-pw")
    assert listed.exit_code == 0, listed.output
    paths = listed.output.splitlines()[:-1]
    assert {"/", "/config/users/root", "/config/users", "/brokers/ids", "/cluster"} <= set(paths)
    assert (
        listed.output.splitlines()[-1]
        == f"{len(paths)} znode(s) under {zk_connect} lack their ACLs: --apply sets them"
    )
    digest_file = tmp_path / "zk.digest"
    write_private(digest_file, b"logq:zk-pw\n")
    applied = cli(
        "security",
        "zk-acls",
        "--zookeeper",
        zk_connect,
        "--zookeeper-digest-file",
        str(digest_file),
        "--apply",
    )
    assert applied.exit_code == 0, applied.output
    assert applied.output.splitlines()[-1] == (
        f"set the ACLs of {len(paths)} znode(s) under {zk_connect} (digest user 'logq')"
    )
    again = cli("security", "zk-acls", "--zookeeper", zk_connect, digest="logq:zk-pw")
    assert again.output.splitlines() == [f"0 znode(s) under {zk_connect} lack their ACLs: --apply sets them"]
    hosts, chroot = split_connect(zk_connect)
    plain = raw_client(hosts)
    try:
        try:
            plain.get(f"{chroot}/config/users/root")
            raise AssertionError("a client without credentials read the admin's credentials")
        except NoAuthError:
            pass
    finally:
        plain.stop()
        plain.close()
    # Without the credentials, or with others, the next user cannot be written: one line each.
    refused = cli("security", "init", "--zookeeper", zk_connect, "--admin", "other", stdin="pw\n")
    assert_one_line_error(refused, "is locked by ACLs to digest user 'logq'", "no ZooKeeper credentials")
    wrong = cli(
        "security", "init", "--zookeeper", zk_connect, "--admin", "other", stdin="pw\n", digest="logq:no"
    )
    assert_one_line_error(wrong, "refuses digest user 'logq': wrong password")
    with_file = cli(
        "security", "init", "--zookeeper", zk_connect, "--admin", "other",
        "--zookeeper-digest-file", str(digest_file), stdin="pw\n",
    )  # fmt: skip
    assert with_file.exit_code == 0, with_file.output


def test_bad_digest_input_is_refused_in_one_line(zk_connect: str, tmp_path: Path) -> None:
    missing = cli("security", "zk-acls", "--zookeeper", zk_connect)
    assert_one_line_error(
        missing, "need the digest credentials: --zookeeper-digest-file or $LOGQ_ZOOKEEPER_DIGEST"
    )
    loose = tmp_path / "loose.digest"
    loose.write_text("logq:pw\n")
    os.chmod(loose, 0o644)
    shown = cli("security", "zk-acls", "--zookeeper", zk_connect, "--zookeeper-digest-file", str(loose))
    assert_one_line_error(shown, "is accessible by group or others", f"chmod 600 {loose}")
    malformed = cli("security", "zk-acls", "--zookeeper", zk_connect, digest="no-colon")
    assert_one_line_error(malformed, "$LOGQ_ZOOKEEPER_DIGEST: expected user:password")
    standalone = cli(
        "security", "init", "--data-dir", str(tmp_path / "d"), "--admin", "a",
        "--zookeeper-digest-file", str(loose), stdin="pw\n",
    )  # fmt: skip
    assert_one_line_error(standalone, "--zookeeper-digest-file goes with --zookeeper")
