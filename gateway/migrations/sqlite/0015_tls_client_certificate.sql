-- An integration's client certificate for mutual TLS: the certificate in
-- the authentication JSON, its private key encrypted here.
ALTER TABLE integrations ADD COLUMN tls_private_key BLOB;
