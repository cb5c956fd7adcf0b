"""Build the ops stack: the Chalice package of ``ops_lambdas/`` for one stage, merged with
``infra/cloudformation/ops.yaml``, its code in S3, translated to plain CloudFormation.

Why each step:

* **Chalice** writes the functions, their roles (``autogen_policy`` is off: each role gets
  its ``.chalice/policy-<function>.json``) and their EventBridge rules. ``app.py`` builds the
  rule patterns from ``REPOSITORY_NAME``, ``CLUSTER_NAME`` and ``SERVICE_NAME`` when Chalice
  imports it, so those come from the site stack's outputs *at package time*, into a stage
  config written in a build copy of the app (never into the checkout).
* **The code** goes to the app's artifact bucket (:mod:`spotops.stage.artifacts`) under a key
  named by its SHA-256, so an unchanged package is an unchanged template and CloudFormation
  leaves the functions alone (what ``aws cloudformation package`` does).
* **Translating locally** with ``aws-sam-translator`` (instead of the service-side
  ``AWS::Serverless`` transform) gives one template for AWS and the local emulator, which
  ignores SAM: what the tests deploy is what AWS gets, and change sets list real resources.

Nothing here prints; failures raise :class:`~spotops.errors.PackageError` with what to do.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from spotops.commands import CommandRunner
from spotops.errors import NotDeployedError, PackageError
from spotops.stage import limits
from spotops.stage.artifacts import BUCKET_OUTPUT, ArtifactStore, bootstrap_stack_name
from spotops.target import Target

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_ssm import SSMClient

    from spotops.stage.stacks import StackDeployer

OPS_SOURCE = Path("ops_lambdas")
MERGE_TEMPLATE = Path("infra") / "cloudformation" / "ops.yaml"
PACKAGE_DIR = "package"
# Chalice writes sam.yaml when the merge template is YAML (whatever --template-format says).
SAM_TEMPLATES = ("sam.yaml", "sam.json")
ZIP_NAME = "deployment.zip"

# Environment the app needs when Chalice imports it (rule patterns), from site outputs.
SITE_NAMES = {
    "CLUSTER_NAME": "ClusterName",
    "SERVICE_NAME": "ServiceName",
    "REPOSITORY_NAME": "RepositoryName",
    "ALARM_TOPIC_ARN": "AlarmTopicArn",
}
APP_TAGS = (
    {"Key": "spotops:app", "Value": {"Ref": "AppName"}},
    {"Key": "spotops:stage", "Value": {"Ref": "StageName"}},
)
# Resources SAM generates beside a function, to which it copies the function's Metadata.
_SAM_GENERATED = frozenset(
    {"AWS::Events::Rule", "AWS::Lambda::Permission", "AWS::Lambda::EventInvokeConfig"}
)
# What the build copy leaves out: caches and Chalice's own local state.
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "deployments", "venv", "vendor")


@dataclass(frozen=True)
class OpsPackage:
    """A built package: the merged SAM template (its ``CodeUri`` still local) and the zip."""

    template: dict[str, Any]
    zip_path: Path

    @property
    def code_sha256(self) -> str:
        return hashlib.sha256(self.zip_path.read_bytes()).hexdigest()

    def code_key(self, app: str, stage: str) -> str:
        """The S3 key of the zip: content-addressed, so a rebuild of the same code is a no-op."""
        return f"{app}/{stage}/ops/{self.code_sha256}.zip"


# What the functions import but the zip does not carry, pinned: the tests run these versions.
RUNTIME_PINS = OPS_SOURCE / "requirements-runtime.txt"
_POWERTOOLS_PIN = re.compile(r"^aws-lambda-powertools==(?P<version>[0-9][0-9A-Za-z.]*)\s*$")


def pinned_powertools(project_dir: Path) -> str:
    """The aws-lambda-powertools version ``ops_lambdas/requirements-runtime.txt`` pins.

    Raises
    ------
    PackageError
        No exact pin (a range names no single layer).
    """
    path = project_dir / RUNTIME_PINS
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise PackageError(f"Cannot read {RUNTIME_PINS}: {exc}") from exc
    found = [m["version"] for line in lines if (m := _POWERTOOLS_PIN.match(line.strip()))]
    if len(found) != 1:
        raise PackageError(
            f"{RUNTIME_PINS} must pin aws-lambda-powertools exactly once (==X.Y.Z): the ops "
            "functions load AWS's layer of that version."
        )
    return found[0]


def powertools_layer_parameter(version: str) -> str:
    """The public SSM parameter where AWS publishes the ARN of its Powertools layer holding
    ``version`` for python3.11 on x86_64 (Powertools docs, "Using SSM Parameter Store")."""
    return f"/aws/service/powertools/python/x86_64/python3.11/{version}"


# The functions of ops_lambdas/.chalice/config.json when it cannot be read.
DEFAULT_FUNCTIONS = (
    "redeploy_on_push",
    "deployment_outcome",
    "reconcile_images",
    "chaos_tick",
    "alarm_action",
    "image_scan_alert",
    "deployment_hook",
)


def ops_function_names(project_dir: Path) -> tuple[str, ...]:
    """The ops toolkit's functions (``lambda_functions`` of the Chalice config); each is
    deployed as ``<app>-<stage>-<name>`` and logs to ``/aws/lambda/<app>-<stage>-<name>``."""
    path = project_dir / OPS_SOURCE / ".chalice" / "config.json"
    try:
        functions = json.loads(path.read_text()).get("lambda_functions") or {}
    except (OSError, ValueError):
        return DEFAULT_FUNCTIONS
    return tuple(str(name) for name in functions) or DEFAULT_FUNCTIONS


def package_environment(app: str, stage: str, site_outputs: Mapping[str, str]) -> dict[str, str]:
    """The stage's environment that must be known when Chalice imports ``app.py``.

    Raises
    ------
    NotDeployedError
        When the site stack has not been deployed (or lacks an output): the ops stack is
        packaged from it, so the order is network, site, ops.
    """
    missing = [output for output in SITE_NAMES.values() if not site_outputs.get(output)]
    if missing:
        raise NotDeployedError(
            f"The ops toolkit of {app}-{stage} is packaged from the site stack's outputs, and "
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing. Deploy in "
            f"order network -> site -> ops: `spotops deploy --stage {stage}` does all three."
        )
    environment = {"APP_NAME": app, "STAGE": stage}
    environment.update({name: site_outputs[output] for name, output in SITE_NAMES.items()})
    return environment


def stage_config(
    base: Mapping[str, Any], stage: str, environment: Mapping[str, str], tags: Mapping[str, str]
) -> dict[str, Any]:
    """``.chalice/config.json`` of the build copy: the checkout's, plus this stage."""
    config = copy.deepcopy(dict(base))
    config.setdefault("stages", {})[stage] = {
        "environment_variables": dict(environment),
        "tags": dict(tags),
    }
    return config


def chalice_command() -> list[str]:
    """The ``chalice`` of this interpreter's environment (the pinned one), else on PATH."""
    beside = Path(sys.executable).with_name("chalice")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("chalice")
    if found is None:
        raise PackageError(
            "The chalice command is not installed. Run `make setup`, which installs the "
            "pinned development requirements."
        )
    return [found]


def build_package(
    project_dir: Path,
    *,
    app: str,
    stage: str,
    region: str,
    site_outputs: Mapping[str, str],
    tags: Mapping[str, str],
    build_dir: Path,
    runner: CommandRunner,
) -> OpsPackage:
    """Package ``ops_lambdas/`` for ``stage`` with the merge template; return the result.

    Parameters
    ----------
    project_dir:
        The checkout (holds ``ops_lambdas/`` and ``infra/``).
    site_outputs:
        The site stack's outputs (``ClusterName``, ``ServiceName``, ``RepositoryName``...).
    build_dir:
        Emptied, then holds ``app/`` (the build copy) and ``package/`` (template and zip).

    Raises
    ------
    NotDeployedError
        The site stack's outputs are missing.
    PackageError
        Chalice failed; the message carries its error and the file it names.
    """
    environment = package_environment(app, stage, site_outputs)
    # Chalice runs inside the build copy: every path it gets must be absolute.
    project_dir, build_dir = project_dir.resolve(), build_dir.resolve()
    source = project_dir / OPS_SOURCE
    merge_template = project_dir / MERGE_TEMPLATE
    for needed in (source / "app.py", source / ".chalice" / "config.json", merge_template):
        if not needed.is_file():
            raise PackageError(f"Cannot package the ops toolkit: {needed} does not exist.")
    if build_dir.exists():
        shutil.rmtree(build_dir)
    app_dir = build_dir / "app"
    shutil.copytree(source, app_dir, ignore=_IGNORED)
    config_path = app_dir / ".chalice" / "config.json"
    try:
        base = json.loads(config_path.read_text())
    except ValueError as exc:
        raise PackageError(
            f"{source / '.chalice' / 'config.json'} is not valid JSON: {exc}"
        ) from exc
    config_path.write_text(json.dumps(stage_config(base, stage, environment, tags), indent=2))

    out_dir = build_dir / PACKAGE_DIR
    args = [
        *chalice_command(),
        "package",
        "--stage",
        stage,
        "--merge-template",
        str(merge_template.resolve()),
        str(out_dir),
    ]
    # Chalice reads the region from the environment; the deploy's region is the one that counts.
    done = runner(args, cwd=app_dir, env={**os.environ, "AWS_DEFAULT_REGION": region})
    template_path = next((out_dir / n for n in SAM_TEMPLATES if (out_dir / n).is_file()), None)
    zip_path = out_dir / ZIP_NAME
    if done.returncode != 0 or template_path is None or not zip_path.is_file():
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise PackageError(
            f"chalice package failed for {source} (merge template {MERGE_TEMPLATE}): "
            + (" | ".join(detail[-6:]) or f"exit status {done.returncode}, no output")
        )
    # Chalice writes long-form intrinsics (Fn::Sub, not !Sub), so a plain YAML load is exact.
    template = yaml.safe_load(template_path.read_text())
    return OpsPackage(template=template, zip_path=zip_path)


def with_code_location(template: Mapping[str, Any], bucket: str, key: str) -> dict[str, Any]:
    """A copy of the SAM template whose functions' ``CodeUri`` points at ``s3://bucket/key``."""
    located = copy.deepcopy(dict(template))
    for resource in located.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = {"Bucket": bucket, "Key": key}
    return located


def translate(
    template: Mapping[str, Any], *, region: str, partition: str = "aws"
) -> dict[str, Any]:
    """Translate a SAM template into plain CloudFormation with ``aws-sam-translator``.

    Raises
    ------
    PackageError
        SAM refused the template (the message lists its reasons).
    """
    import boto3
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    # No managed policies are looked up: every role carries its own inline policy. The
    # session only tells SAM the region (it makes no call).
    translator = Translator(
        managed_policy_map={},
        sam_parser=Parser(),
        boto_session=boto3.session.Session(region_name=region),
    )
    try:
        translated: dict[str, Any] = translator.translate(
            sam_template=copy.deepcopy(dict(template)),
            parameter_values={"AWS::Region": region, "AWS::Partition": partition},
            passthrough_metadata=True,
        )
    except InvalidDocumentException as exc:
        reasons = "; ".join(str(cause) for cause in exc.causes)
        raise PackageError(f"SAM refused the packaged ops template: {reasons}") from exc
    # SAM's event sources cannot tag the rules they create; every resource carries ours.
    for resource in translated.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Events::Rule":
            resource["Properties"].setdefault("Tags", list(APP_TAGS))
        # SAM copies a function's Metadata onto the rule, permission and invoke config it
        # generates for it. The checkov skips in it are the function's own checks, and each
        # copy costs ~700 bytes of template.
        # (SAM shares one Metadata dict between a function and its copies: replace, never edit.)
        metadata = resource.get("Metadata")
        if resource.get("Type") in _SAM_GENERATED and isinstance(metadata, dict):
            resource["Metadata"] = {k: v for k, v in metadata.items() if k != "checkov"}
    return translated


def template_body(template: Mapping[str, Any]) -> str:
    """Compact JSON, refused when over what CloudFormation reads even from S3 (``spotops
    deploy`` sends it inline when it is under the inline limit).

    Raises
    ------
    LimitError
        Over CloudFormation's limit for a template in S3.
    """
    body = json.dumps(template, separators=(",", ":"), sort_keys=True)
    limits.refuse(
        limits.template_source_breaches(body, by_url=True, subject="The ops template"),
        before="uploading the ops package",
    )
    return body


def build_stack_template(
    project_dir: Path,
    *,
    app: str,
    stage: str,
    region: str,
    site_outputs: Mapping[str, str],
    tags: Mapping[str, str],
    build_dir: Path,
    runner: CommandRunner,
    bucket: str,
) -> tuple[OpsPackage, dict[str, Any]]:
    """Package the app and translate its template with the code at its future S3 location
    (``s3://<bucket>/<code key>``); uploading is the caller's business."""
    package = build_package(
        project_dir,
        app=app,
        stage=stage,
        region=region,
        site_outputs=site_outputs,
        tags=tags,
        build_dir=build_dir,
        runner=runner,
    )
    located = with_code_location(package.template, bucket, package.code_key(app, stage))
    return package, translate(located, region=region)


def offline_site_outputs(app: str, stage: str) -> dict[str, str]:
    """The site outputs as the site template names things, for packaging with no AWS at hand
    (``spotops package --offline``, ``make lint``). Account-bound values are fakes."""
    fake_account = "123456789012"  # AWS's documentation account, never a real one
    return {
        "ClusterName": f"{app}-{stage}",
        "ServiceName": f"{app}-{stage}-site",
        "RepositoryName": f"{app}-{stage}-site",
        "TaskDefinitionFamily": f"{app}-{stage}-site",
        "TaskRoleArn": f"arn:aws:iam::{fake_account}:role/{app}-{stage}-site-TaskRole",
        "TaskExecutionRoleArn": f"arn:aws:iam::{fake_account}:role/{app}-{stage}-site-Exec",
        "AlarmTopicArn": f"arn:aws:sns:us-east-1:{fake_account}:{app}-{stage}-alarms",
    }


def offline_artifact_bucket(app: str, region: str) -> str:
    """The artifact bucket as the bootstrap template names it, with the fake account of
    :func:`offline_site_outputs`."""
    return f"{app}-artifacts-123456789012-{region}"


def deployed_package_inputs(
    stacks: StackDeployer, *, app: str, site_stack: str, region: str
) -> tuple[dict[str, str], str]:
    """The deployed site's outputs (empty when it is not deployed) and the app's artifact
    bucket (as the bootstrap template names it when that stack does not exist yet)."""
    site = stacks.describe(site_stack)
    bootstrap = stacks.describe(bootstrap_stack_name(app))
    bucket = (bootstrap.outputs if bootstrap else {}).get(BUCKET_OUTPUT)
    return (site.outputs if site else {}), bucket or offline_artifact_bucket(app, region)


@dataclass(frozen=True)
class OpsStack:
    """What ``spotops deploy`` hands CloudFormation for the ops stack."""

    template_body: str
    parameters: dict[str, str]
    package: OpsPackage
    code_location: str
    # Which Powertools layer the functions load, and how it was chosen (for the deploy's log).
    layer_note: str = ""


class OpsStackBuilder:
    """Package, upload and translate the ops stack of one stage.

    Parameters
    ----------
    project_dir:
        The checkout.
    s3, lambda_client, ssm:
        boto3 clients of the target account. SSM reads the ARN of AWS's Powertools layer
        for the pinned version from its public parameter.
    runner:
        Runs ``chalice package``.
    region:
        The deploy's region.
    target:
        Where the stack goes; a target that does not hold AWS's public Powertools layer
        names the layer to use instead (:meth:`~spotops.target.Target.powertools_layer`).
    """

    def __init__(
        self,
        project_dir: Path,
        *,
        s3: Any,
        lambda_client: LambdaClient,
        ssm: SSMClient,
        runner: CommandRunner,
        region: str,
        target: Target,
    ) -> None:
        self._project_dir = project_dir
        self._s3 = s3
        self._lambda = lambda_client
        self._ssm = ssm
        self._runner = runner
        self._region = region
        self._target = target

    def build(
        self,
        *,
        app: str,
        stage: str,
        site_outputs: Mapping[str, str],
        tags: Mapping[str, str],
        bucket: str,
    ) -> OpsStack:
        """Build the package from the site's outputs, upload the zip to ``bucket`` (the
        artifact bucket), translate the template.

        Raises
        ------
        NotDeployedError
            The site stack does not exist yet.
        PackageError
            Chalice or SAM refused the app or the merge template.
        LimitError
            The package or the template is over one of AWS's limits; nothing was uploaded.
        """
        package, template = build_stack_template(
            self._project_dir,
            app=app,
            stage=stage,
            region=self._region,
            site_outputs=site_outputs,
            tags=tags,
            build_dir=self._project_dir / ".spotops" / "build" / stage,
            runner=self._runner,
            bucket=bucket,
        )
        key = package.code_key(app, stage)
        body = template_body(template)
        archive = package.zip_path.read_bytes()
        limits.refuse(
            package_breaches(archive, f"The ops package of {app}-{stage}"), before="uploading it"
        )
        ArtifactStore(self._s3, bucket, self._region).put(key, archive)
        parameters = {}
        own_layer = self._target.powertools_layer(self._lambda)
        if own_layer is not None:
            parameters["PowertoolsLayerArn"], note = own_layer
        else:
            arn, note = self._public_layer(pinned_powertools(self._project_dir))
            if arn:
                parameters["PowertoolsLayerArn"] = arn
        return OpsStack(
            template_body=body,
            parameters=parameters,
            package=package,
            code_location=f"s3://{bucket}/{key}",
            layer_note=note,
        )

    def _public_layer(self, version: str) -> tuple[str, str]:
        """AWS's Powertools layer of ``version`` in this region, read from AWS's public SSM
        parameter; ``("", why)`` when it cannot be read, and the stack falls back to its
        ``PowertoolsLayerVersion``."""
        from botocore.exceptions import ClientError

        name = powertools_layer_parameter(version)
        try:
            arn = str(self._ssm.get_parameter(Name=name)["Parameter"]["Value"])
        except ClientError as exc:
            return "", (
                f"Powertools layer: could not read {name} ({exc.response['Error']['Code']}); "
                "the functions load the layer of ops.yaml's PowertoolsLayerVersion, which may "
                f"hold another version than the pinned {version} (spotops/data/"
                "powertools_layers.json says which). Pass --param PowertoolsLayerArn=<arn> to "
                "choose it."
            )
        return arn, f"Powertools layer: {arn} (aws-lambda-powertools {version}, from {name})."


def package_breaches(archive: bytes, subject: str) -> list[limits.Breach]:
    """The deployment package against Lambda's limits, zipped and unzipped. Powertools and
    the X-Ray SDK come from AWS's layer, whose size is not known here: the unzipped check
    counts the zip alone."""
    zipped, unzipped = limits.zip_sizes(archive)
    found = [
        limits.LAMBDA_ZIP.breach(zipped, subject),
        limits.LAMBDA_UNZIPPED.breach(unzipped, subject),
    ]
    return [breach for breach in found if breach is not None]


def write_package(
    project_dir: Path,
    *,
    app: str,
    stage: str,
    region: str,
    site_outputs: Mapping[str, str],
    tags: Mapping[str, str],
    out_dir: Path,
    runner: CommandRunner,
    bucket: str,
) -> list[Path]:
    """Build the package into ``out_dir`` without deploying it: ``deployment.zip``,
    ``sam.yaml`` (the merged Chalice template) and ``ops.json`` (what CloudFormation gets,
    with the code at ``s3://<bucket>/<key>``). Returns the files written.

    Raises
    ------
    LimitError
        The package or the template is over one of AWS's limits.
    """
    package, translated = build_stack_template(
        project_dir,
        app=app,
        stage=stage,
        region=region,
        site_outputs=site_outputs,
        tags=tags,
        build_dir=out_dir / "build",
        runner=runner,
        bucket=bucket,
    )
    template_body(translated)  # refuse a template CloudFormation would refuse
    limits.refuse(
        package_breaches(package.zip_path.read_bytes(), f"The ops package of {app}-{stage}"),
        before="writing it",
    )
    zip_path, sam_path, cfn_path = out_dir / ZIP_NAME, out_dir / "sam.yaml", out_dir / "ops.json"
    shutil.copyfile(package.zip_path, zip_path)
    sam_path.write_text(yaml.safe_dump(package.template, sort_keys=False))
    cfn_path.write_text(json.dumps(translated, indent=2) + "\n")
    return [zip_path, sam_path, cfn_path]
