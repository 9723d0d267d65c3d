"""People: users, teams, roles, skills, sessions and API tokens."""
