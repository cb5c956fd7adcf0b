"""Image scan findings for the images the site service runs.

The build's scan (Trivy in CI) guards what ships; this guards what runs. ECR scans every
pushed image (scan on push, the site template turns it on). Two moments can put a
vulnerable image and the service together, and each has its event:

- ``ECR Image Scan``: a scan finished. It alerts when the scan found HIGH or CRITICAL
  vulnerabilities *and* the scanned digest is one the service runs right now (in any of its
  deployments).
- ``ECS Deployment State Change`` ``SERVICE_DEPLOYMENT_COMPLETED``: the service now runs a
  new image, whose scan may have finished before it ran (a deploy held by dry run, the kill
  switch or the lock; a rollback to an old image; a deploy by hand). It reads the finished
  scans of the images the service runs and alerts on HIGH or CRITICAL.

Either way on-call gets one Slack alert per event that links
``runbooks/image-vulnerability.md``. Findings in images nobody runs (an old tag, a build that
never deployed) and LOW/MEDIUM findings are logged, not posted: an alert is something to act
on. The job changes nothing in production.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.decisions import JobResult, Status
from chalicelib.events import EcrImageScanEvent, EcsDeploymentStateChangeEvent
from chalicelib.gateway import AwsCallError, EcsGateway
from chalicelib.idempotent import run_once
from chalicelib.observability import count, ignore_event, logger
from chalicelib.runbooks import IMAGE_VULNERABILITY, runbook_url
from chalicelib.slack import build_message

if TYPE_CHECKING:
    from chalicelib.toolkit import Toolkit

JOB = "image-scan"
ALERT_SEVERITIES = ("CRITICAL", "HIGH")
SEVERITY_ORDER = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED")


@dataclass(frozen=True)
class ScanVerdict:
    alert: bool
    reason: str


def serious_findings(counts: Mapping[str, int]) -> dict[str, int]:
    """The counts at alerting severities that are above zero, most severe first."""
    return {s: counts[s] for s in ALERT_SEVERITIES if counts.get(s, 0) > 0}


def scan_verdict(
    counts: Mapping[str, int], digest: str, running_digests: Iterable[str]
) -> ScanVerdict:
    """Whether a finished scan of ``digest`` is worth waking someone for.

    Example
    -------
    >>> scan_verdict({"HIGH": 2}, "sha256:a", {"sha256:a"}).alert
    True
    >>> scan_verdict({"HIGH": 2}, "sha256:a", {"sha256:b"}).reason
    'sha256:a is not running in the service'
    """
    serious = serious_findings(counts)
    if not serious:
        return ScanVerdict(False, "no HIGH or CRITICAL findings")
    if digest not in set(running_digests):
        return ScanVerdict(False, f"{digest[:19]} is not running in the service")
    return ScanVerdict(True, f"{describe_counts(serious)} in a running image")


def describe_counts(counts: Mapping[str, int]) -> str:
    """``CRITICAL 1, HIGH 3`` in severity order (unknown severities last)."""
    ordered = sorted(
        counts,
        key=lambda s: SEVERITY_ORDER.index(s) if s in SEVERITY_ORDER else len(SEVERITY_ORDER),
    )
    return ", ".join(f"{s} {counts[s]}" for s in ordered if counts[s]) or "none"


def handle_event(raw: dict[str, Any], kit: Toolkit) -> dict[str, Any]:
    """Route the function's two event kinds (see the module's docstring)."""
    if raw.get("detail-type") == "ECS Deployment State Change":
        return handle_deployed(EcsDeploymentStateChangeEvent(raw), kit)
    return handle_scan(EcrImageScanEvent(raw), kit)


def handle_scan(event: EcrImageScanEvent, kit: Toolkit) -> dict[str, Any]:
    """Alert once when a finished scan finds HIGH/CRITICAL in an image the service runs.

    Returns
    -------
    dict
        ``status``: ``alerted``, ``skipped`` (clean enough, not running, or the scan
        failed), ``ignored`` (malformed or another repository) or ``duplicate``.

    Raises
    ------
    AwsCallError
        The service could not be read: Lambda retries, then the failure is kept in the
        events dead-letter queue (an unread finding is not a clean one).
    """
    settings = kit.settings
    problem = event.problem(settings.repository_name)
    if problem:
        return ignore_event(JOB, problem)
    facts: dict[str, Any] = {
        "digest": event.image_digest,
        "tags": event.image_tags,
        "findings": describe_counts(event.severity_counts),
    }
    if event.scan_status != "COMPLETE":
        reason = f"the scan ended {event.scan_status}: nothing is known about this image"
        logger.warning("image scan did not complete", extra={"reason": reason, **facts})
        return JobResult(JOB, Status.SKIPPED, reason, facts).as_dict()
    if not serious_findings(event.severity_counts):
        logger.info("image scan: nothing to alert", extra=facts)
        return JobResult(JOB, Status.SKIPPED, "no HIGH or CRITICAL findings", facts).as_dict()
    return run_once(
        kit,
        job=JOB,
        key_prefix="spotops-image-scan",
        key={"event_id": str(event.get("id")), "digest": event.image_digest},
        work=lambda: _decide_and_alert(event, kit, facts),
    )


def _decide_and_alert(
    event: EcrImageScanEvent, kit: Toolkit, facts: dict[str, Any]
) -> dict[str, Any]:
    running = _running_digests(kit)
    verdict = scan_verdict(event.severity_counts, event.image_digest, running)
    if not verdict.alert:
        logger.info("image scan: not alerting", extra={"reason": verdict.reason, **facts})
        return JobResult(JOB, Status.SKIPPED, verdict.reason, facts).as_dict()
    tag = next(iter(event.image_tags), "untagged")
    _post(
        kit,
        label=f"{event.repository_name}:{tag} ({event.image_digest[:19]})",
        digest=event.image_digest,
        counts=event.severity_counts,
        facts=[("Tags", ", ".join(event.image_tags) or "-"), ("Scanned", str(event.get("time")))],
        event_id=str(event.get("id")),
    )
    count("ImageVulnerabilityAlerts", JOB)
    logger.warning("vulnerable image running", extra=facts)
    return JobResult(JOB, Status.ALERTED, verdict.reason, facts).as_dict()


def handle_deployed(event: EcsDeploymentStateChangeEvent, kit: Toolkit) -> dict[str, Any]:
    """After a completed deployment: alert on the finished scans of what the service runs.

    Raises
    ------
    AwsCallError
        The service or a scan could not be read (Lambda retries, then the dead-letter queue).
    """
    settings = kit.settings
    problem = event.problem(settings.cluster_name, settings.service_name)
    if problem:
        return ignore_event(JOB, problem)
    if event.event_name != "SERVICE_DEPLOYMENT_COMPLETED":
        reason = f"{event.event_name}: only a completed deployment changes what runs"
        return JobResult(JOB, Status.IGNORED, reason).as_dict()
    return run_once(
        kit,
        job=JOB,
        key_prefix="spotops-image-scan-deployed",
        key={"event_id": str(event.get("id")), "deployment_id": event.deployment_id},
        work=lambda: _check_running(event, kit),
    )


def _check_running(event: EcsDeploymentStateChangeEvent, kit: Toolkit) -> dict[str, Any]:
    settings = kit.settings
    gateway = _gateway(kit)
    running = _running_digests(kit)
    alerted: list[str] = []
    for digest in sorted(running):
        try:
            counts = gateway.scan_counts(settings.repository_name, digest)
        except AwsCallError as exc:
            logger.error(
                "cannot read the image's scan", extra={"digest": digest, "error": str(exc)}
            )
            raise
        if counts is None:
            # Not scanned yet: its scan event comes later and finds it running.
            logger.info("running image has no finished scan yet", extra={"digest": digest})
            continue
        verdict = scan_verdict(counts, digest, running)
        if not verdict.alert:
            continue
        _post(
            kit,
            label=f"{settings.repository_name}@{digest[:19]}",
            digest=digest,
            counts=counts,
            facts=[("Deployment", event.deployment_id), ("Event", event.event_name)],
            event_id=str(event.get("id")),
        )
        count("ImageVulnerabilityAlerts", JOB)
        logger.warning(
            "vulnerable image running",
            extra={"digest": digest, "findings": describe_counts(counts)},
        )
        alerted.append(digest)
    facts = {"deployment_id": event.deployment_id, "running": sorted(running), "alerted": alerted}
    if alerted:
        return JobResult(
            JOB,
            Status.ALERTED,
            f"{len(alerted)} running image(s) with HIGH or CRITICAL findings",
            facts,
        ).as_dict()
    return JobResult(
        JOB, Status.SKIPPED, "no running image has HIGH or CRITICAL findings", facts
    ).as_dict()


def _gateway(kit: Toolkit) -> EcsGateway:
    settings = kit.settings
    return EcsGateway(
        kit.ecs, kit.ecr, cluster=settings.cluster_name, service=settings.service_name
    )


def _running_digests(kit: Toolkit) -> set[str]:
    """Digests of the images the service runs; images by tag (the first deploy) are
    resolved in our repository."""
    settings = kit.settings
    gateway = _gateway(kit)
    try:
        service = gateway.service()
        if service is None:
            return set()
        digests: set[str] = set()
        for image in gateway.images_in_service(service, settings.container_name):
            if "@" in image:
                digests.add(image.rsplit("@", 1)[1])
                continue
            name, _, tag = image.rpartition(":")
            if name.endswith(f"/{settings.repository_name}") and tag:
                found = gateway.digest_of_tag(settings.repository_name, tag)
                if found:
                    digests.add(found)
    except AwsCallError as exc:
        logger.error("cannot read what the service runs", extra={"error": str(exc)})
        raise
    return digests


def _post(
    kit: Toolkit,
    *,
    label: str,
    digest: str,
    counts: Mapping[str, int],
    facts: list[tuple[str, str]],
    event_id: str,
) -> None:
    settings = kit.settings
    message = build_message(
        f":warning: Vulnerable image running: {label}",
        f"`{settings.service_key}` runs an image whose ECR scan found "
        f"*{describe_counts(serious_findings(counts))}*. Rebuild it on a patched base and push "
        "it; the runbook lists the findings and the fix.",
        facts=[("Findings", describe_counts(counts)), ("Digest", digest), *facts],
        runbook=runbook_url(settings.runbook_base_url, IMAGE_VULNERABILITY),
        footer=f"{settings.app_name}-{settings.stage} · {JOB} · event {event_id}",
    )
    kit.notifier.post(message, job=JOB)
