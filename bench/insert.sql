INSERT INTO bench_insert (payload) VALUES ('one row, like one command''s event');
