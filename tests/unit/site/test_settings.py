"""Settings are read once from the environment; a bad value names its variable."""

from __future__ import annotations

import pytest

from website.settings import Settings, SettingsError


def test_defaults_fit_a_fargate_task() -> None:
    settings = Settings.from_env({})

    assert settings == Settings()
    assert (settings.host, settings.port, settings.workers) == ("0.0.0.0", 8080, 1)
    assert settings.drain_seconds + settings.shutdown_grace_seconds < 120
    assert settings.keep_alive_seconds > 60  # the ALB's idle timeout
    assert settings.enable_test_routes is False


def test_can_read_every_variable() -> None:
    digest = "sha256:" + "ab" * 32
    settings = Settings.from_env(
        {
            "HOST": "127.0.0.1",
            "PORT": "9000",
            "SERVICE_NAME": "spotops-dev",
            "APP_VERSION": "1.4.0",
            "GIT_COMMIT": "0123abc",
            "IMAGE_TAG": "0123abc",
            "IMAGE_DIGEST": digest,
            "WORKERS": "2",
            "DRAIN_SECONDS": "2.5",
            "SHUTDOWN_GRACE_SECONDS": "5",
            "REQUEST_MAX_BYTES": "2048",
            "KEEP_ALIVE_SECONDS": "90",
            "ECS_CONTAINER_METADATA_URI_V4": "http://169.254.170.2/v4/abc/",
            "METADATA_TIMEOUT_SECONDS": "0.5",
            "ENABLE_TEST_ROUTES": "true",
        }
    )

    assert settings == Settings(
        host="127.0.0.1",
        port=9000,
        service_name="spotops-dev",
        app_version="1.4.0",
        git_commit="0123abc",
        image_tag="0123abc",
        image_digest=digest,
        workers=2,
        drain_seconds=2.5,
        shutdown_grace_seconds=5.0,
        request_max_bytes=2048,
        keep_alive_seconds=90,
        metadata_uri="http://169.254.170.2/v4/abc",
        metadata_timeout_seconds=0.5,
        enable_test_routes=True,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "0"),
        ("PORT", "70000"),
        ("HOST", "example.com"),
        ("WORKERS", "0"),
        ("WORKERS", "1.5"),
        ("DRAIN_SECONDS", "-1"),
        ("DRAIN_SECONDS", "nan"),
        ("SHUTDOWN_GRACE_SECONDS", "soon"),
        ("REQUEST_MAX_BYTES", "10"),
        ("ENABLE_TEST_ROUTES", "maybe"),
        ("IMAGE_DIGEST", "latest"),
        ("SERVICE_NAME", "<script>"),
        ("ECS_CONTAINER_METADATA_URI_V4", "file:///etc/passwd"),
        ("METADATA_TIMEOUT_SECONDS", "0"),
    ],
)
def test_error_if_a_value_is_bad_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})

    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")
    assert repr(value) in str(caught.value)


def test_error_if_drain_and_grace_outlast_the_ecs_stop_timeout() -> None:
    with pytest.raises(SettingsError, match="stopTimeout") as caught:
        Settings.from_env({"DRAIN_SECONDS": "100", "SHUTDOWN_GRACE_SECONDS": "15"})

    assert caught.value.variable == "DRAIN_SECONDS"


def test_whitespace_around_values_is_ignored() -> None:
    assert Settings.from_env({"PORT": " 8081\n"}).port == 8081
