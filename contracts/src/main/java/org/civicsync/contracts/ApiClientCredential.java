package org.civicsync.contracts;

import java.util.UUID;

/** A new API-client credential; the token is shown once and stored only as a hash. */
public record ApiClientCredential(UUID clientId, String tenantId, String name, String token) {}
