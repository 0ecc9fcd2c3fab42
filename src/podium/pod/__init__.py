"""The pod: the data owner's runtime (being built).

Today: its key pairs (:mod:`podium.pod.keys`), its database (:mod:`podium.pod.store`:
task definitions, runs and results, processed and failed files, the privacy-budget
ledger, the audit log, request nonces), its local policy (:mod:`podium.pod.policy`) and
the admission of job requests (:mod:`podium.pod.admission`).
"""

from podium.pod.pod import DatasourceContainerConfig, Pod

__all__ = ["DatasourceContainerConfig", "Pod"]
