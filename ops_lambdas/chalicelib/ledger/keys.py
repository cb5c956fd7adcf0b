"""Every key of the safety ledger table, built here and nowhere else.

One DynamoDB table holds what every job remembers (string key ``pk``, string sort key
``sk``; DynamoDB TTL on the number ``ttl``). ``<svc>`` is ``<cluster>/<service>``.

=======================  ===========================  =============================================
pk                       sk                           attributes (writer)
=======================  ===========================  =============================================
``LOCK#<svc>``           ``LOCK``                     holder, action, acquired_at, expires_at, ttl,
                                                      the action's details (digest, tag,
                                                      deployment_id, budget_taken, ...); guest
                                                      (holder, until, details): who shares a
                                                      deployment's lock (:class:`~.records.Lock`)
``COOLDOWN#<svc>``       ``<action>``                 until (epoch s), ttl: also the redeploy
                                                      job's once-per-period notices
                                                      (``notice-<name>-<digest>``)
``BUDGET#<action>``      ``<YYYYmmddHH>``             count (actions started in that UTC hour), ttl
``DEPLOYMENT#<svc>``     ``LATEST``                   deployment_id, digest, tag, task_definition,
                                                      status, pushed_at, event_at, reason,
                                                      announced, superseded_id, updated_at,
                                                      desired_count (a first deploy's), ttl
                                                      (:class:`~.records.DeploymentRecord`)
``HISTORY#<svc>``        ``<iso>#<id>``               action, outcome, detail, ttl
                                                      (:class:`~.records.HistoryEntry`)
``IMAGE#<svc>``          ``<digest>``                 outcome (deployed, refused, older,
                                                      held-back), tag, detail, at, event_at, ttl
                                                      (:class:`~.records.ImageRecord`)
``HOLD#<svc>``           ``NEWEST``                   at (push time of the newest image ever
                                                      deployed), digest, tag, updated_at; **no
                                                      ttl** (:class:`~.records.HighWater`)
``FREEZE#<svc>``         ``STATE``                    frozen, since, reason, by, deployment_id,
                                                      unfrozen_at, unfrozen_by; **no ttl**: whether
                                                      pushes deploy (:class:`~.records.Freeze`)
``FOREIGN#<svc>``        ``<ECS deployment id>``      ttl: a failed deployment we did not start,
                                                      reported once
``SCAN#<svc>``           ``ENHANCED``                 at, event_id; no ttl: the enhanced-scanning
                                                      notice, once per stage
``ALARM#<alarm name>``   ``STATE``                    state, since, last_at, entries, held,
                                                      last_summary_at, ttl (alarm function)
``ALARM#<alarm name>``   ``EVENT#<state>#<epoch>``    notice, entries, held, lasted, stale,
                                                      alert_posted, outcome, follow_up_posted,
                                                      ttl (one day)
``SPOT#<svc>``           ``<task id>``                at, task_arn, ttl (one day): interruptions
``CAPACITY#<svc>``       ``SHIFT``                    shifted_at, original (JSON strategy),
                                                      trigger, last_trouble_at; no ttl
``CAPACITY#<svc>``       ``HOME``                     strategy (JSON), at; no ttl
``NOTICE#<svc>``         ``<notice>``                 until, ttl: an alarm-function notice posted
                                                      at most once per period
``CHAOS#<svc>``          ``LAST_KILL``                at, kind (``chaos`` / ``spot``), task_arn,
                                                      run_id, ttl (at least a year): the
                                                      minimum-gap rule's memory
``CHAOS#<svc>``          ``RUN#<iso time>#<run>``     run_id, task_arn, killed_at, status,
                                                      recovery_seconds, reason, ttl: one
                                                      experiment
=======================  ===========================  =============================================

The readers and writers of each item: :class:`~chalicelib.ledger.SafetyLedger` (locks to
scan notice), :class:`~chalicelib.alarms.facts.RemediationRecords` (alarm, Spot, capacity,
notice) and :class:`~chalicelib.chaos.facts.ChaosRecords` (chaos).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    """The primary key of one ledger item."""

    pk: str
    sk: str

    def fields(self) -> dict[str, str]:
        """``{"pk": ..., "sk": ...}``: the item's key attributes, plain."""
        return {"pk": self.pk, "sk": self.sk}


def lock(service_key: str) -> Key:
    return Key(f"LOCK#{service_key}", "LOCK")


def cooldown(service_key: str, action: str) -> Key:
    return Key(f"COOLDOWN#{service_key}", action)


def budget(action: str, hour: str) -> Key:
    """``hour``: the UTC hour as ``YYYYmmddHH``."""
    return Key(f"BUDGET#{action}", hour)


def deployment(service_key: str) -> Key:
    return Key(f"DEPLOYMENT#{service_key}", "LATEST")


def history_partition(service_key: str) -> str:
    return f"HISTORY#{service_key}"


def history(service_key: str, stamp: str, entry_id: str) -> Key:
    """``stamp``: ISO time to the second (``Z``), so the sort key orders entries in time."""
    return Key(history_partition(service_key), f"{stamp}#{entry_id}")


def image_partition(service_key: str) -> str:
    return f"IMAGE#{service_key}"


def image(service_key: str, digest: str) -> Key:
    return Key(image_partition(service_key), digest)


def high_water(service_key: str) -> Key:
    return Key(f"HOLD#{service_key}", "NEWEST")


def freeze(service_key: str) -> Key:
    return Key(f"FREEZE#{service_key}", "STATE")


def foreign_failure(service_key: str, deployment_id: str) -> Key:
    return Key(f"FOREIGN#{service_key}", deployment_id)


def enhanced_scanning(service_key: str) -> Key:
    return Key(f"SCAN#{service_key}", "ENHANCED")


def alarm_state(alarm_name: str) -> Key:
    return Key(f"ALARM#{alarm_name}", "STATE")


def alarm_event(alarm_name: str, state: str, at: int) -> Key:
    return Key(f"ALARM#{alarm_name}", f"EVENT#{state}#{at}")


def spot_partition(service_key: str) -> str:
    return f"SPOT#{service_key}"


def spot_interruption(service_key: str, task_id: str) -> Key:
    return Key(spot_partition(service_key), task_id)


def capacity_shift(service_key: str) -> Key:
    return Key(f"CAPACITY#{service_key}", "SHIFT")


def capacity_home(service_key: str) -> Key:
    return Key(f"CAPACITY#{service_key}", "HOME")


def notice(service_key: str, name: str) -> Key:
    return Key(f"NOTICE#{service_key}", name)


def chaos_last_kill(service_key: str) -> Key:
    return Key(f"CHAOS#{service_key}", "LAST_KILL")


def chaos_run(service_key: str, stamp: str, run_id: str) -> Key:
    """``stamp``: the run's start as ISO time to the second (``Z``)."""
    return Key(f"CHAOS#{service_key}", f"RUN#{stamp}#{run_id}")
