"""The assistant actions (``FixSqlByMetaAgent``, ``OptimizeSqlByMetaAgent``,
``GenerateSqlFromNL``, ``AnswerSqlSyntaxByMetaAgent``): advice on a caller's SQL from the
parser, the SQL review, the catalog and the live database's plan (read through the SQL
console), and, where an operator configured one, from a language model that sees only what
the caller may read."""
