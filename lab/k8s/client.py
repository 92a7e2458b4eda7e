"""The one factory of the lab's Kubernetes clients, and the client that explains its failures."""

from __future__ import annotations

from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from lab.errors import LabError
from lab.i18n import _
from lab.identity import Identity
from lab.k8s.errors import ForbiddenError, api_error, transport_error


class ExplainingApiClient(client.ApiClient):
    """The ApiClient `NamespaceClient.connect` builds: its failures explain themselves. No
    answer at all raises `ApiUnreachableError`, a 401/403 `ForbiddenError` (both name the
    context)."""

    def __init__(self, configuration: client.Configuration, context: str) -> None:
        super().__init__(configuration)
        self.context = context

    def call_api(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().call_api(*args, **kwargs)
        except urllib3.exceptions.HTTPError as exc:
            raise transport_error(exc, self.context, self.configuration.host) from exc
        except ApiException as exc:
            if exc.status == 0:  # the REST layer's wrapping of a TLS failure
                raise transport_error(exc, self.context, self.configuration.host) from exc
            raise

    def response_deserialize(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().response_deserialize(*args, **kwargs)
        except ApiException as exc:
            if exc.status in (401, 403) and not isinstance(exc, ForbiddenError):
                raise api_error(exc, None, None, self.context) from exc
            raise


def api_client(identity: Identity) -> ExplainingApiClient:
    """The one factory of the lab's Kubernetes clients: `identity`'s kubeconfig and context,
    answering with explained errors (`ExplainingApiClient`)."""
    fix = (
        "Point KUBECONFIG at the kubeconfig your instructor gave you, and pass --context with "
        "one of its contexts (kubectl config get-contexts)."
        if identity.shared
        else "Check KUBECONFIG and --context (kubectl config get-contexts); for the kind lab: "
        "ironclad-lab up --target kind."
    )
    configuration = client.Configuration()
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=identity.kubeconfig,
            context=identity.context,
            client_configuration=configuration,
            persist_config=False,
        )
    except (config.ConfigException, FileNotFoundError, OSError) as exc:
        raise LabError(
            _("No kubeconfig for context {context} ({kubeconfig}): {error}").format(
                context=identity.context, kubeconfig=identity.kubeconfig, error=exc
            ),
            fix,
        ) from exc
    return ExplainingApiClient(configuration, identity.context)
