"""moto, in-process, on 127.0.0.1: STS, IAM, CloudFormation (and SSM, Lambda) of the stand-in."""

from __future__ import annotations

import logging
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from .moto_cfn_models import register

DEFAULT_REGION = "us-east-1"
BOOTSTRAP_PARAMETER = "/cdk-bootstrap/hnb659fds/version"
# The bootstrap version the CDK's CheckBootstrapVersion rule asks for is >= 6.
BOOTSTRAP_VERSION = "30"
# Placeholder operator credentials for the in-process moto: they grant nothing outside it.
OPERATOR_KEY_ID = "AKIAOPERATORLOCAL000"
OPERATOR_SECRET = "operator-secret-for-local-moto-only"  # noqa: S105


class MotoAws:
    def __init__(self, *, region: str = DEFAULT_REGION) -> None:
        register()
        self.region = region
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint_url = ""
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    def start(self) -> MotoAws:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def client(self, service: str, **credentials: str) -> Any:
        return boto3.session.Session().client(
            service,  # type: ignore[call-overload]
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id=credentials.get("aws_access_key_id", OPERATOR_KEY_ID),
            aws_secret_access_key=credentials.get("aws_secret_access_key", OPERATOR_SECRET),
            aws_session_token=credentials.get("aws_session_token"),
        )

    def bootstrap(self) -> None:
        """What `cdk bootstrap` leaves behind that the template checks: the version parameter."""
        self.client("ssm").put_parameter(
            Name=BOOTSTRAP_PARAMETER, Value=BOOTSTRAP_VERSION, Type="String", Overwrite=True
        )

    def is_bootstrapped(self) -> bool:
        try:
            self.client("ssm").get_parameter(Name=BOOTSTRAP_PARAMETER)
        except self.client("ssm").exceptions.ParameterNotFound:
            return False
        return True
