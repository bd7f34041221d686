"""Kubernetes API test server: ConfigMap and Lease REST semantics over real HTTP, with fault knobs.

No real kube-apiserver can run here, so the Kubernetes HA backend is tested against this server, driven by
the real client (lightkube) over real HTTP on 127.0.0.1, as Flink tests its Kubernetes HA services against
a CRUD-mode mock API server. It implements, for ``core/v1`` ConfigMaps and ``coordination.k8s.io/v1``
Leases:

* create/get/list/replace/patch/delete/deletecollection with the apiserver's status codes and ``Status``
  bodies (201, 404 NotFound, 409 AlreadyExists, 409 Conflict on a stale ``resourceVersion``, 422 Invalid,
  400 BadRequest, 415, 405, 401);
* one cluster-wide ``resourceVersion`` counter, optimistic concurrency on PUT, PATCH and DELETE
  preconditions, no-op updates that are not writes;
* merge patch (RFC 7386), strategic merge patch (served as merge patch) and JSON patch (RFC 6902);
* metadata-only reads (``Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1``, and the list
  variant), 406 for representations it lacks;
* label selectors (equality, set-based, existence) and ``metadata.name``/``metadata.namespace`` field
  selectors; ``limit``/``continue`` pagination at a consistent snapshot;
* watch: newline-delimited JSON events, resume from a ``resourceVersion``, ``410 Expired`` ERROR events
  once the bounded history no longer holds it, ``timeoutSeconds``, BOOKMARKs, ``sendInitialEvents``;
* fault injection (:class:`FaultInjector`): latency, failing the next N (matching) requests with any code,
  pausing, dropping watch streams (connection reset, clean end, or 410), shortening the history.

It does NOT model authentication beyond one bearer token, authorization/RBAC, admission (webhooks,
quotas, limit ranges), namespaces as objects (any valid namespace name exists), server-side apply and
``managedFields``, finalizers and graceful deletion (a delete is immediate), owner references and garbage
collection, ``metadata.generation``, protobuf, HTTP/2, API priority and fairness, or any other kind.
docs/kubernetes-api-test-server.md has the full list.

Public names:

* :class:`KubernetesApiTestServer`: the runner (``async with`` in the test's loop, or ``with``/
  ``start()``/``stop()`` in a background thread), ``.url``, ``.faults``, ``.write_kubeconfig()``,
  object accessors for assertions;
* :class:`FaultInjector`, :data:`WatchDrop`: the fault knobs;
* :class:`RemoteFaultInjector`: the same knobs over HTTP (``/_test/faults``) for a server in another process;
* :class:`KubernetesApiServerProcess`: runs ``python -m standby.testing.kubernetes_api_server`` as a child;
* :class:`RequestRecord`: what :meth:`KubernetesApiTestServer.requests` returns;
* :class:`KubernetesApiApp`, :class:`ObjectStore`, :class:`ServerSettings`: the pieces, for embedding.
"""

from ._app import KubernetesApiApp as KubernetesApiApp
from ._app import RequestRecord as RequestRecord
from ._app import ServerSettings as ServerSettings
from ._faults import FaultInjector as FaultInjector
from ._faults import WatchDrop as WatchDrop
from ._process import KubernetesApiServerProcess as KubernetesApiServerProcess
from ._remote import RemoteFaultInjector as RemoteFaultInjector
from ._resources import CONFIGMAPS as CONFIGMAPS
from ._resources import LEASES as LEASES
from ._resources import ResourceType as ResourceType
from ._server import DEFAULT_TOKEN as DEFAULT_TOKEN
from ._server import KubernetesApiTestServer as KubernetesApiTestServer
from ._store import ObjectStore as ObjectStore

__all__ = [
    "CONFIGMAPS",
    "DEFAULT_TOKEN",
    "LEASES",
    "FaultInjector",
    "KubernetesApiApp",
    "KubernetesApiServerProcess",
    "KubernetesApiTestServer",
    "ObjectStore",
    "RemoteFaultInjector",
    "RequestRecord",
    "ResourceType",
    "ServerSettings",
    "WatchDrop",
]
