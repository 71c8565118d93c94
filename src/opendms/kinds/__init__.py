"""The ticket kinds, one module each: its parameter model and its behaviour, as the
``TicketKind`` the module makes (``KIND``). ``opendms.tickets.registry`` lists them; adding a
kind is a module here and its line there."""
