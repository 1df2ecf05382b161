"""The tests' moto server routes by the same list of service modules as moto's own listing."""

from __future__ import annotations

from moto import backends

from tests.support.moto_modules import listed_afresh, moto_modules


def test_the_memo_is_installed_and_lists_what_moto_lists() -> None:
    assert backends.list_of_moto_modules is moto_modules
    assert backends.list_of_moto_modules() == frozenset(listed_afresh())
    assert {"ec2", "s3", "ssm", "iam"} <= backends.list_of_moto_modules()
