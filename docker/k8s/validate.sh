#!/usr/bin/env bash
# Validate the Kubernetes manifests offline: kubernetes-validate (PyPI; it ships the API schemas) against a
# pinned Kubernetes version with --strict (unknown fields are errors), then check-manifests.py for what the
# schemas cannot know (probes run `kvm-launch status`, the grace period covers the shutdown timeout, ...).
#
# Usage: docker/k8s/validate.sh [MANIFEST...]     (default: docker/k8s/*.yaml)
#   env: KUBERNETES_VERSION (default 1.30.0), KUBERNETES_VALIDATE (the PyPI pin), KVM_LAUNCH_VENV
# The tool is installed once into a virtual environment (default docker/out/k8s-venv).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KUBERNETES_VERSION=${KUBERNETES_VERSION:-1.30.0}
KUBERNETES_VALIDATE=${KUBERNETES_VALIDATE:-kubernetes-validate==1.37.0}
venv=${KVM_LAUNCH_VENV:-$here/../out/k8s-venv}
if (($# == 0)); then set -- "$here"/*.yaml; fi

if [[ ! -x $venv/bin/kubernetes-validate ]] || ! "$venv/bin/pip" show -q "${KUBERNETES_VALIDATE%%==*}" >/dev/null 2>&1 ||
	[[ $("$venv/bin/pip" show "${KUBERNETES_VALIDATE%%==*}" | awk '$1 == "Version:" { print $2 }') != "${KUBERNETES_VALIDATE##*==}" ]]; then
	rm -rf "$venv"
	python3 -m venv "$venv" || { echo "validate: python3 -m venv failed: install python3-venv" >&2; exit 1; }
	"$venv/bin/pip" install -q --disable-pip-version-check "$KUBERNETES_VALIDATE" ||
		{ echo "validate: cannot install $KUBERNETES_VALIDATE from PyPI (is it reachable?)" >&2; exit 1; }
fi

status=0
"$venv/bin/kubernetes-validate" --strict -k "$KUBERNETES_VERSION" "$@" || status=1
"$venv/bin/python3" "$here/check-manifests.py" "$@" || status=1
exit $status
