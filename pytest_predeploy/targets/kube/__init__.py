"""The kube staging target: each release of a service is an image built on this machine and run
from the service's Kubernetes manifests, with podman (``podman kube play``) or on a cluster with
kubectl. Layout and invariants: :mod:`.target`; images: :mod:`.image`; settings: :mod:`.settings`."""
