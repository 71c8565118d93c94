"""Schema changes as tickets: comparing a database's tables with the shape they should have
(a structure sync's source, a schema design's stages) and keeping what was found
(``store.models.SchemaPlan``), which the precheck reviews and execution runs."""
