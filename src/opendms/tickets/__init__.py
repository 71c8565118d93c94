"""One module per ticket type: its parameters, and (in later issues) precheck and executor."""
