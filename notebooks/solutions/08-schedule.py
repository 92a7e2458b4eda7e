# Exercise 08-schedule: the cheapest schedule that never risks more than an hour of writes.
schedule = "0 * * * *"  # every hour, all week: 168 backups, never more than 60 minutes apart
lab.verify("08-schedule", schedule)
