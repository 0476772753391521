-- Indexes for the members list's name filter: each word of the filter must
-- be the start of the family or the given name, case-insensitively
-- (lower(name) LIKE 'prefix%'). text_pattern_ops compares byte-wise, so a
-- LIKE prefix can use the index whatever the database's collation (the
-- members_name index, in the collation's order, cannot); the planner ORs
-- the two indexes in a bitmap.
CREATE INDEX members_family_name_prefix ON members (lower(family_name) text_pattern_ops);
CREATE INDEX members_given_name_prefix ON members (lower(given_name) text_pattern_ops);
