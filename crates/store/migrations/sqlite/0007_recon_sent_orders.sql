-- Reconciliation by queries (issue 15, channels without a bill file such
-- as Lakala): the run asks the channel about the config's orders created
-- around the day that went to it and are not paid. Orders never sent to a
-- channel have no config and are left out of the index.
CREATE INDEX orders_config_created_at ON orders (config_id, created_at) WHERE config_id IS NOT NULL;
