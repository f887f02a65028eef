"""Business rules and transactions. Services never touch request, session, flash or the Stripe SDK."""
