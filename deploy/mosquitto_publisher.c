/*
 * A Mosquitto 2.0 plugin that names the publisher of each SensorThings message a logged-in
 * client publishes, so that the subscribers the platform runs can tell who sent it: the API
 * checks the rights of the key that published an Observation on `v1.1/Observations` (the
 * broker's ACL cannot: the Datastream is named in the payload).
 *
 * Only messages on the SensorThings topics (`.../v1.1/...`) are touched; readings on device
 * and gateway topics pass unchanged, as ingest does not need it.
 * The name goes in the MQTT 5 user property `stadspuls-publisher`, set to the client's
 * username, appended after any the client sent. A message that already carries that
 * property is refused as not authorised (PUBACK 135 to an MQTT 5 client), so the property
 * never says what a client claimed. Messages of anonymous clients, and the notifications
 * of the platform itself (user property `stadspuls-notification`), are passed on as they
 * are. deploy/mosquitto.py compiles it and names it in each listener.
 */

#include <stdbool.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mqtt_protocol.h>

#define PUBLISHER "stadspuls-publisher"
#define NOTIFICATION "stadspuls-notification"

static bool has_user_property(const mosquitto_property *list, const char *wanted)
{
	const mosquitto_property *at = list;
	char *name = NULL;
	char *value = NULL;
	bool found = false;

	while(!found && (at = mosquitto_property_read_string_pair(
			at, MQTT_PROP_USER_PROPERTY, &name, &value, false)) != NULL){
		found = strcmp(name, wanted) == 0;
		mosquitto_free(name);
		mosquitto_free(value);
		name = NULL;
		value = NULL;
		at = mosquitto_property_next(at);
	}
	return found;
}

static int on_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *message = event_data;
	const char *username = mosquitto_client_username(message->client);

	(void)event;
	(void)userdata;
	/* Only the SensorThings topics need it; device readings, the hot path, pass as sent. */
	if(message->topic == NULL || strstr(message->topic, "v1.1/") == NULL){
		return MOSQ_ERR_SUCCESS;
	}
	if(has_user_property(message->properties, PUBLISHER)){
		return MOSQ_ERR_ACL_DENIED;
	}
	if(username == NULL || has_user_property(message->properties, NOTIFICATION)){
		return MOSQ_ERR_SUCCESS;
	}
	return mosquitto_property_add_string_pair(
		&message->properties, MQTT_PROP_USER_PROPERTY, PUBLISHER, username);
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	(void)supported_version_count;
	(void)supported_versions;
	return 5;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **user_data,
		struct mosquitto_opt *opts, int opt_count)
{
	(void)opts;
	(void)opt_count;
	/* Loaded once per listener, each time with an identifier of its own. */
	*user_data = identifier;
	return mosquitto_callback_register(identifier, MOSQ_EVT_MESSAGE, on_message, NULL, NULL);
}

int mosquitto_plugin_cleanup(void *user_data, struct mosquitto_opt *opts, int opt_count)
{
	(void)opts;
	(void)opt_count;
	return mosquitto_callback_unregister(user_data, MOSQ_EVT_MESSAGE, on_message, NULL);
}
