"""The names every part of a workshop agrees on: its labels, the learner's account and Role."""

from __future__ import annotations

LABEL_WORKSHOP = "ironclad.lab/workshop"  # the workshop's name (unique per cluster, see provision)
LABEL_WORKSHOP_ID = "ironclad.lab/workshop-id"  # generated at provision: teardown selects by it
LABEL_LEARNER = "ironclad.lab/learner"
LABEL_PART = "ironclad.lab/part"  # "learner" or "peer": which of a learner's two namespaces
MANAGED_BY = {"app.kubernetes.io/managed-by": "ironclad-lab"}
ROLE = "ironclad-learner"
SERVICE_ACCOUNT = "learner"
