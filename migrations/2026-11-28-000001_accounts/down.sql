DROP TABLE keyring;
DROP TABLE audit_events;
DROP TABLE rate_limits;
DROP TABLE sessions;
DROP TABLE invitations;
DROP TABLE users;
DROP TABLE tenants;
