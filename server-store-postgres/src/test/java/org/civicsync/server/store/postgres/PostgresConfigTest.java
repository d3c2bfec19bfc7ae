package org.civicsync.server.store.postgres;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class PostgresConfigTest {
  @Test
  void aUrlAloneMeansTheDefaultSchemaAndPoolWithCredentialsFromTheUrl() {
    PostgresConfig c = PostgresConfig.of("jdbc:postgresql://db:5432/civic?user=sync");
    assertThat(c.schema()).isEqualTo("civicsync");
    assertThat(c.maxPoolSize()).isEqualTo(PostgresConfig.DEFAULT_MAX_POOL_SIZE);
    assertThat(c.user()).isEmpty();
    assertThat(c.password()).isEmpty();
  }

  @Test
  void itsTextNeverShowsThePasswordNeitherConfiguredNorInTheUrl() {
    PostgresConfig c = PostgresConfig.of("jdbc:postgresql://db/civic?user=sync&password=s3cret&ssl=true")
        .withCredentials("sync", "hunter2");
    assertThat(c.toString()).doesNotContain("s3cret").doesNotContain("hunter2").contains("ssl=true").contains("user=sync");
  }

  @Test
  void schemasMustBePlainLowerCaseIdentifiers() {
    PostgresConfig base = PostgresConfig.of("jdbc:postgresql://db/civic");
    assertThat(base.withSchema("civic_sync_2").schema()).isEqualTo("civic_sync_2");
    for (String bad : new String[] {"", "CivicSync", "2civic", "civic-sync", "civic; DROP TABLE x", "a".repeat(64)}) {
      assertThatThrownBy(() -> base.withSchema(bad)).isInstanceOf(IllegalArgumentException.class);
    }
  }

  @Test
  void onlyPostgresUrlsAndPositivePoolSizesAreAccepted() {
    assertThatThrownBy(() -> PostgresConfig.of("jdbc:sqlite:data.db")).isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> PostgresConfig.of("jdbc:postgresql://db/civic").withMaxPoolSize(0))
        .isInstanceOf(IllegalArgumentException.class);
  }
}
