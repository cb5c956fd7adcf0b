"""``make lint``'s check of AWS's limits (spotops.stage.limits) that needs no account: every
template, and the ops toolkit's packaged template and zip, for every profile in ``config/``.

For each profile it measures what ``spotops deploy`` would send: each template's size and how
it goes (inline up to 51,200 bytes, else by URL), resources / outputs / parameters, each
role's inline policies together, managed policies, function environments, alarm
descriptions, SSM values, task definitions, the package zipped and unzipped; it prints the
largest of each kind against its limit. It fails on a breach, and on a size over
:data:`spotops.stage.limits.MARGIN` of its limit: the measure counts references to other resources
as written (an ARN's ``!GetAtt`` is shorter than the ARN), so a size that close may already
be over in AWS.

Run ``python -m infra.limits_check [--root DIR] [--stage S ...]``; exit status 1 when
anything is over.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from spotops.commands import run_command
from spotops.ops.package import (
    offline_artifact_bucket,
    offline_site_outputs,
    template_body,
    write_package,
)
from spotops.stage import limits
from spotops.stage.config import STACKS, load_stage_config
from spotops.stage.deploy import plan_stacks, stack_parameters, stack_tags
from spotops.stage.templates import load_template

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
# Templates deployed beside the stage's stacks: the app's bootstrap (every deploy) and the CI
# role (by hand, once).
OTHER_TEMPLATES = ("bootstrap", "ci-role")


def profile_measures(root: Path, stage: str, work_dir: Path) -> list[limits.Measure]:
    """Every size ``spotops deploy --stage <stage>`` would send, measured offline."""
    config = load_stage_config(root, stage)
    plans = plan_stacks(root, STACKS, config)
    fed = offline_site_outputs(config.app, stage)
    measures: list[limits.Measure] = []
    for plan in plans:
        body, template = plan.template_body, plan.template
        if plan.spec.packaged:
            out = work_dir / stage
            written = write_package(
                root,
                app=config.app,
                stage=stage,
                region=REGION,
                site_outputs=fed,
                tags=stack_tags(config),
                out_dir=out,
                runner=run_command,
                bucket=offline_artifact_bucket(config.app, REGION),
            )
            template = json.loads(next(p for p in written if p.name == "ops.json").read_text())
            body = template_body(template)
            archive = next(p for p in written if p.suffix == ".zip").read_bytes()
            zipped, unzipped = limits.zip_sizes(archive)
            subject = f"{plan.name} package"
            measures += [
                limits.Measure(limits.LAMBDA_ZIP, subject, zipped),
                limits.Measure(limits.LAMBDA_UNZIPPED, subject, unzipped),
            ]
        parameters = stack_parameters(
            plan,
            plans,
            config.parameters,
            image_uri="",
            fed_outputs=fed if plan.spec.fed_by else None,
        )
        measures += [
            _source(plan.name, body),
            *limits.template_measures(template, parameters, subject=plan.name),
        ]
    for name in OTHER_TEMPLATES:
        path = root / "infra" / "cloudformation" / f"{name}.yaml"
        template = load_template(path)
        values = {"AppName": config.app, "StageName": stage}
        declared = template.get("Parameters") or {}
        parameters = {k: v for k, v in values.items() if k in declared}
        measures += [
            _source(name, path.read_text()),
            *limits.template_measures(template, parameters, subject=name),
        ]
    return measures


def _source(subject: str, body: str) -> limits.Measure:
    size = limits.utf8_size(body)
    inline = size <= limits.TEMPLATE_BODY.maximum
    return limits.Measure(limits.TEMPLATE_BODY if inline else limits.TEMPLATE_URL, subject, size)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository")
    parser.add_argument("--stage", action="append", help="a profile of config/ (default: all)")
    args = parser.parse_args(argv)
    stages = args.stage or sorted(p.stem for p in (args.root / "config").glob("*.json"))
    problems = []
    with tempfile.TemporaryDirectory(prefix="limits-check-") as work:
        for stage in stages:
            measures = profile_measures(args.root, stage, Path(work))
            print(f"limits check, profile {stage}:", file=sys.stderr)
            for measure in measures:
                if measure.limit in (limits.TEMPLATE_BODY, limits.TEMPLATE_URL):
                    how = "inline" if measure.limit is limits.TEMPLATE_BODY else "by URL"
                    print(
                        f"  {measure.subject}: template {measure.measured:,} bytes, {how} "
                        f"({measure.share:.0%} of {measure.limit.maximum:,})",
                        file=sys.stderr,
                    )
            for measure in sorted(limits.largest(measures).values(), key=lambda m: -m.share):
                if measure.limit in (limits.TEMPLATE_BODY, limits.TEMPLATE_URL):
                    continue
                print(
                    f"  largest {measure.limit.what}: {measure.subject}, "
                    f"{measure.measured:,} of {measure.limit.maximum:,} {measure.limit.unit} "
                    f"({measure.share:.0%})",
                    file=sys.stderr,
                )
            for measure in measures:
                breach = measure.breach()
                if breach is not None:
                    problems.append(f"{stage}: {breach}")
                elif measure.share > limits.MARGIN:
                    problems.append(
                        f"{stage}: {measure.subject}: {measure.measured:,} {measure.limit.unit} "
                        f"is over {limits.MARGIN:.0%} of AWS's limit of "
                        f"{measure.limit.maximum:,} for {measure.limit.what}; references are "
                        f"counted as written, so it may be over in AWS. {measure.limit.fix}"
                    )
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"limits check: {len(stages)} profiles, {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
