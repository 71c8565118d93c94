"""The SQL console: scripts run on a database at once (``ExecuteScript``, ``opendms sql run``),
under the caller's permissions and the instance's rule set, masked and audited."""
