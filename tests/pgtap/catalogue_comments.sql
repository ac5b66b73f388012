-- Everything in the analysts' schemas (market, signals) says what it is: every table, view,
-- continuous aggregate, type, function and procedure has a COMMENT (docs/sql-api.md is made of
-- them).
BEGIN;
SELECT plan(3);

SELECT is_empty(
    $$SELECT n.nspname || '.' || c.relname
      FROM pg_class AS c
      INNER JOIN pg_namespace AS n ON c.relnamespace = n.oid
      WHERE n.nspname IN ('market', 'signals')
        AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
        AND obj_description(c.oid, 'pg_class') IS NULL$$,
    'every table, view and continuous aggregate (a view) analysts see has a COMMENT'
);
SELECT is_empty(
    $$SELECT p.oid::regprocedure::text
      FROM pg_proc AS p
      INNER JOIN pg_namespace AS n ON p.pronamespace = n.oid
      WHERE n.nspname IN ('market', 'signals')
        AND obj_description(p.oid, 'pg_proc') IS NULL$$,
    'every function and procedure analysts see has a COMMENT'
);
SELECT is_empty(
    $$SELECT t.oid::regtype::text
      FROM pg_type AS t
      INNER JOIN pg_namespace AS n ON t.typnamespace = n.oid
      LEFT JOIN pg_class AS c ON t.typrelid = c.oid
      WHERE n.nspname IN ('market', 'signals')
        AND (t.typtype IN ('e', 'd') OR (t.typtype = 'c' AND c.relkind = 'c'))
        AND obj_description(t.oid, 'pg_type') IS NULL$$,
    'every type analysts see has a COMMENT'
);
SELECT * FROM finish();
ROLLBACK;
