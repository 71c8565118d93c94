"""What a process tells its operators: log lines that name the request and the ticket they
belong to, and Prometheus metrics. It knows nothing of the rest of OpenDMS: the layers above
bind what they know and count what they do."""
