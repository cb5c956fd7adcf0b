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

With ECR's *enhanced* scanning (Amazon Inspector, continuous), ECR sends no ``ECR Image
Scan`` event; Inspector sends ``Inspector2 Scan`` (the initial scan finished, with counts)
and one ``Inspector2 Finding`` per vulnerability as it is found, updated or closed, and ECR
reports the scan's status as ``ACTIVE`` rather than ``COMPLETE``. Both mean "the findings are
there" (:func:`scan_finished`). An open HIGH or CRITICAL finding (or an initial scan counting
them) in an image the service runs is alerted **once per image** (keyed by digest: the
dozens of findings of one image make one alert), and the first Inspector event of the stage
posts, once per stage, that scanning is enhanced, so the team knows which path is live.

Either way on-call gets one Slack alert per event that links
``runbooks/image-vulnerability.md``. Findings in images nobody runs (an old tag, a build that
never deployed) and LOW/MEDIUM findings are logged, not posted: an alert is something to act
on. The job changes nothing in production.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.errors import DeferredError, LedgerError
from chalicelib.events import (
    INSPECTOR_SOURCE,
    EcrImageScanEvent,
    EcsDeploymentStateChangeEvent,
    InspectorFindingEvent,
    InspectorScanEvent,
)
from chalicelib.gateway import SCAN_FINISHED, AwsCallError, EcsGateway
from chalicelib.idempotent import run_once
from chalicelib.observability import count, ignore_event, logger
from chalicelib.results import JobResult, Status
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


def scan_finished(status: str) -> bool:
    """Whether a scan with this status has findings to read: ``COMPLETE`` (basic scanning),
    ``ACTIVE`` (enhanced scanning: complete, and kept up to date) or Inspector's
    ``INITIAL_SCAN_COMPLETE``.

    Example
    -------
    >>> [scan_finished(s) for s in ("COMPLETE", "ACTIVE", "FAILED", "PENDING")]
    [True, True, False, False]
    """
    return status in SCAN_FINISHED or status == "INITIAL_SCAN_COMPLETE"


def finding_verdict(severity: str, status: str) -> ScanVerdict:
    """Whether one Inspector finding is worth an alert, before asking what runs: only an open
    (``ACTIVE``) finding at HIGH or CRITICAL.

    Example
    -------
    >>> finding_verdict("CRITICAL", "ACTIVE").alert
    True
    >>> finding_verdict("HIGH", "CLOSED").reason
    'the finding is CLOSED, not open'
    """
    if status != "ACTIVE":
        return ScanVerdict(False, f"the finding is {status}, not open")
    if severity not in ALERT_SEVERITIES:
        return ScanVerdict(False, f"a {severity} finding (only HIGH and CRITICAL alert)")
    return ScanVerdict(True, f"an open {severity} finding")


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
    """Route the function's event kinds (see the module's docstring)."""
    if raw.get("detail-type") == "ECS Deployment State Change":
        return handle_deployed(EcsDeploymentStateChangeEvent(raw), kit)
    if raw.get("source") == INSPECTOR_SOURCE:
        if raw.get("detail-type") == InspectorFindingEvent.DETAIL_TYPE:
            return handle_inspector(InspectorFindingEvent(raw), kit)
        return handle_inspector(InspectorScanEvent(raw), kit)
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
    if not scan_finished(event.scan_status):
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


def handle_inspector(
    event: InspectorFindingEvent | InspectorScanEvent, kit: Toolkit
) -> dict[str, Any]:
    """Enhanced scanning: alert once per image on an open HIGH/CRITICAL finding (or an
    initial scan counting them) in an image the service runs.

    Returns
    -------
    dict
        ``status``: ``alerted``, ``skipped`` (closed, below HIGH, not running),
        ``duplicate`` (this image was alerted already) or ``ignored`` (malformed, another
        repository, not an ECR image). ``enhanced_notice`` tells whether this event posted
        the once-per-stage notice that scanning is enhanced.

    Raises
    ------
    AwsCallError
        The service could not be read (Lambda retries, then the dead-letter queue).
    """
    settings = kit.settings
    problem = event.problem(settings.repository_name)
    if problem:
        return ignore_event(JOB, problem)
    digest = event.image_digest
    facts: dict[str, Any] = {
        "digest": digest,
        "tags": event.image_tags,
        "source": event.get("detail-type"),
    }
    noticed = _announce_enhanced(event, kit)
    if isinstance(event, InspectorFindingEvent):
        verdict = finding_verdict(event.severity, event.status)
        facts.update(finding=event.title, severity=event.severity, finding_status=event.status)
        counts = {event.severity: 1}
    else:
        serious = serious_findings(event.severity_counts)
        verdict = (
            ScanVerdict(True, f"{describe_counts(serious)} in the initial scan")
            if scan_finished(event.scan_status) and serious
            else ScanVerdict(False, f"scan {event.scan_status}: no HIGH or CRITICAL findings")
        )
        facts["findings"] = describe_counts(event.severity_counts)
        counts = event.severity_counts
    if not verdict.alert:
        logger.info("enhanced scan: nothing to alert", extra={"reason": verdict.reason, **facts})
        skipped = JobResult(JOB, Status.SKIPPED, verdict.reason, facts).as_dict()
        return {**skipped, "enhanced_notice": True} if noticed else skipped
    result = run_once(
        kit,
        job=JOB,
        key_prefix="spotops-image-scan-image",
        key={"digest": digest},
        work=lambda: _alert_enhanced(event, kit, counts, facts),
    )
    # Not in the remembered result: a replay did not post the notice.
    return {**result, "enhanced_notice": True} if noticed else result


def _alert_enhanced(
    event: InspectorFindingEvent | InspectorScanEvent,
    kit: Toolkit,
    counts: Mapping[str, int],
    facts: dict[str, Any],
) -> dict[str, Any]:
    settings = kit.settings
    digest = event.image_digest
    running = _running_digests(kit)
    verdict = scan_verdict(counts, digest, running)
    if not verdict.alert:
        # Not remembered: a later finding, once the image runs, may still alert.
        logger.info("enhanced scan: not alerting", extra={"reason": verdict.reason, **facts})
        raise DeferredError(Status.SKIPPED.value, verdict.reason, **facts)
    extra: list[tuple[str, str]] = []
    if isinstance(event, InspectorFindingEvent):
        image_counts = _image_counts(kit, digest)
        counts = image_counts if serious_findings(image_counts) else counts
        extra = [("Finding", f"{event.title or event.finding_arn} ({event.severity})")]
    tag = next(iter(event.image_tags), "untagged")
    _post(
        kit,
        label=f"{settings.repository_name}:{tag} ({digest[:19]})",
        digest=digest,
        counts=counts,
        facts=[
            *extra,
            ("Tags", ", ".join(event.image_tags) or "-"),
            ("Scanning", "enhanced (Amazon Inspector)"),
            ("Reported", str(event.get("time"))),
        ],
        event_id=str(event.get("id")),
    )
    count("ImageVulnerabilityAlerts", JOB)
    logger.warning("vulnerable image running", extra=facts)
    return JobResult(JOB, Status.ALERTED, verdict.reason, facts).as_dict()


def _image_counts(kit: Toolkit, digest: str) -> dict[str, int]:
    """The image's counts from ECR (``ACTIVE``: enhanced), for the alert; ``{}`` when ECR
    has none yet or cannot say (the alert then names the one finding)."""
    try:
        return _gateway(kit).scan_counts(kit.settings.repository_name, digest) or {}
    except AwsCallError as exc:
        logger.warning("cannot read the image's counts", extra={"error": str(exc)})
        return {}


def _announce_enhanced(event: InspectorFindingEvent | InspectorScanEvent, kit: Toolkit) -> bool:
    """Post, once per stage, that this repository is scanned by Amazon Inspector. A ledger
    failure is logged and skips the notice: it must not hold back a vulnerability alert."""
    settings = kit.settings
    try:
        first = kit.ledger.claim_enhanced_scanning_notice(
            settings.service_key,
            at=int(time.time()),
            event_id=str(event.get("id")),
        )
        if not first:
            return False
    except LedgerError as exc:
        logger.warning("cannot record the enhanced-scanning notice", extra={"error": str(exc)})
        return False
    message = build_message(
        f":mag: Image scanning is enhanced: {settings.repository_name}",
        f"Amazon Inspector scans `{settings.repository_name}` continuously (ECR enhanced "
        "scanning). Vulnerability alerts for "
        f"`{settings.service_key}` now come from Inspector's findings, once per image; ECR's "
        "basic scan-on-push events no longer arrive.",
        facts=[("First event", str(event.get("detail-type"))), ("At", str(event.get("time")))],
        runbook=runbook_url(settings.runbook_base_url, IMAGE_VULNERABILITY),
        footer=f"{settings.app_name}-{settings.stage} · {JOB} · event {event.get('id')}",
    )
    kit.notifier.post(message, job=JOB)
    logger.info("enhanced scanning noticed", extra={"repository": settings.repository_name})
    return True


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
