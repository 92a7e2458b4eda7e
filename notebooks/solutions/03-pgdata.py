# Exercise 03-pgdata: where must PostgreSQL keep its data so that it outlives postgres-0?
answer = "/var/lib/postgresql/data/pgdata"  # a directory of its own inside the claim's mount
lab.verify("03-pgdata", answer)
