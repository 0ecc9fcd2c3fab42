"""The modeller: send tasks to pods and get their results (from Python or the CLI)."""

from podium.modeller._modeller import Modeller, modeller_keys_folder, task_definition
from podium.modeller.results import write_results

__all__ = ["Modeller", "modeller_keys_folder", "task_definition", "write_results"]
