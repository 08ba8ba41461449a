class FailureCollector:
    def __init__(self):
        self.failures = []

    def add(self, item_id, error, step_id="unknown", error_context=None):
        self.failures.append((item_id, str(error), step_id))

    def get_all(self):
        return list(self.failures)
