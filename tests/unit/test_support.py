"""The shared test helpers behave as the other tests rely on."""

from __future__ import annotations

import socket

import pytest

from tests.support.net import LOOPBACK, free_port, wait_for_port


def test_free_port_can_be_bound_on_loopback() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind((LOOPBACK, port))


def test_wait_for_port_times_out_when_nothing_listens() -> None:
    with pytest.raises(TimeoutError, match="nothing listened"):
        wait_for_port(free_port(), timeout=0.2)


@pytest.mark.emulator
def test_emulator_starts_empty_and_answers_on_loopback(emulator: str) -> None:
    import boto3

    assert emulator.startswith(f"http://{LOOPBACK}:")
    s3 = boto3.client("s3", endpoint_url=emulator)
    s3.create_bucket(Bucket="left-behind")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["left-behind"]
