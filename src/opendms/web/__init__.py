"""The web console at ``/console/``: server-rendered pages (Jinja2, htmx) for the people who
file, approve and run tickets. Every act and every read goes through the same action
handlers and services as the API, under the same RAM policies, as the user signed in."""
