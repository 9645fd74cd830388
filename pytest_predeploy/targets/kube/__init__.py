"""The kube staging target: each release of a service is an image built on this machine and run
from the service's Kubernetes manifests, with podman (``podman kube play``) here or with kubectl
on a cluster. :class:`~.environment.KubeTarget` is its
:class:`~pytest_predeploy.targets.base.Target`; the state and its invariants are described in
:mod:`.target` and :mod:`.state`, images in :mod:`.image`, the cluster in :mod:`.cluster`, the
command line in ``__main__``; its ``staging.kube:`` settings are
:mod:`pytest_predeploy.targets.kube_settings`; docs/kube.md is the user's guide.
"""
