"""The staff console: server-rendered pages (Jinja2) with htmx partial updates, under
``/console`` on the admin API's own app, behind the same role dependencies as the API."""
