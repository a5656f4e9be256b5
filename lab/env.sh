# shellcheck shell=bash
# Environment of the meetops.jitsi test lab. Sourced by the lab scripts; source it yourself to use
# molecule, ansible-playbook or podman by hand:   . lab/env.sh
#
# Everything the lab keeps between runs lives under MEETOPS_LAB_HOME (default ~/.cache/meetops-jitsi):
# the virtualenv and the extracted dependency collections (one per requirements hash), the apt cache,
# and a per-checkout collections tree whose ansible_collections/meetops/jitsi points at this checkout.

MEETOPS_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
export MEETOPS_REPO
export MEETOPS_LAB_HOME=${MEETOPS_LAB_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/meetops-jitsi}
export MEETOPS_LAB_APT_PORT=31420
export CONTAINERS_CONF=$MEETOPS_REPO/lab/containers.conf

_meetops_venv_hash=$(cat "$MEETOPS_REPO/requirements/dev.txt" "$MEETOPS_REPO/requirements/constraints.txt" |
    sha256sum | cut -c1-12)
_meetops_deps_hash=$(sha256sum <"$MEETOPS_REPO/requirements/collections.txt" | cut -c1-12)
export MEETOPS_VENV=$MEETOPS_LAB_HOME/venv-$_meetops_venv_hash
export MEETOPS_DEPS=$MEETOPS_LAB_HOME/deps-$_meetops_deps_hash
unset _meetops_venv_hash _meetops_deps_hash
_meetops_tree_hash=$(printf %s "$MEETOPS_REPO" | sha256sum | cut -c1-12)
export MEETOPS_TREE=$MEETOPS_LAB_HOME/tree-$_meetops_tree_hash
unset _meetops_tree_hash

export ANSIBLE_COLLECTIONS_PATH=$MEETOPS_TREE:$MEETOPS_DEPS
export ANSIBLE_HOME=$MEETOPS_LAB_HOME/ansible-home
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 NO_COLOR=1
export ANSIBLE_NOCOLOR=1
export MOLECULE_NO_LOG=false
# Facts only under ansible_facts, as in estates that follow newer ansible-core (INJECT_FACTS_AS_VARS=False):
# every scenario, the lab and the benchmarks show that the roles, playbooks and inventories need no
# injected fact variables such as ansible_default_ipv4.
export ANSIBLE_INJECT_FACT_VARS=false

if [ -x "$MEETOPS_VENV/bin/python" ]; then
    export VIRTUAL_ENV=$MEETOPS_VENV
    case ":$PATH:" in
        *":$MEETOPS_VENV/bin:"*) ;;
        *) export PATH=$MEETOPS_VENV/bin:$PATH ;;
    esac
fi
