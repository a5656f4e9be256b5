"""Make this checkout importable as ansible_collections.meetops.jitsi for the unit tests.

The collection's plugins import each other by their collection path. Ansible finds the collection
through ANSIBLE_COLLECTIONS_PATH; plain pytest needs a directory on sys.path that holds
ansible_collections/meetops/jitsi, so one is made here, pointing at this checkout. Ansible's collection
finder is installed over it (as ansible-test does for unit tests), so the plugin loaders resolve FQCNs
such as ansible.builtin.password too.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

_REPO = Path(__file__).resolve().parents[2]
_TREE = Path(tempfile.mkdtemp(prefix="meetops-jitsi-tree-"))
(_TREE / "ansible_collections" / "meetops").mkdir(parents=True)
(_TREE / "ansible_collections" / "meetops" / "jitsi").symlink_to(_REPO)
sys.path.insert(0, str(_TREE))
_AnsibleCollectionFinder(paths=[str(_TREE)])._install()
