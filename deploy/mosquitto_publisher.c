/*
 * A Mosquitto 2.0 plugin that names the publisher of each SensorThings message a logged-in
 * client publishes, so that the subscribers the platform runs can tell who sent it: the API
 * checks the rights of the key that published an Observation on `v1.1/Observations` (the
 * broker's ACL cannot: the Datastream is named in the payload).
 *
 * Only messages on the SensorThings topics (`.../v1.1/...`) are touched; readings on device
 * and gateway topics pass unchanged, as ingest does not need it.
 * The name goes in the MQTT 5 user property `stadspuls-publisher`, appended after any the
 * client sent, as `<username>;<mac>`: the HMAC-SHA256, in hex, of the username, the topic
 * and the payload (the first two each ended by a NUL byte) under the stack's publisher
 * secret (option `plugin_opt_secret`; without it the plugin does not start). The API
 * believes only a name whose MAC it can check, because a Will message never passes through
 * this plugin (Mosquitto 2.0 runs MOSQ_EVT_MESSAGE for published messages only) and may
 * carry any property its client put in it. A published message that already carries the
 * property is refused as not authorised (PUBACK 135 to an MQTT 5 client). Every message of
 * a logged-in client is named, the platform's own notifications too: a property a client
 * can send never exempts a message from naming. A message carrying the user property
 * `stadspuls-notification` is named without a signature (`<username>` alone): the API
 * passes such messages over whoever sent them, and only it can check a signature, so
 * the HMAC would be spent on every notification for nobody. deploy/mosquitto.py compiles
 * it and names it, with the secret, in each listener.
 *
 * It also guards two things the password and ACL files cannot say:
 *
 * - Client ids of the stack's service accounts (option `plugin_opt_services`, names
 *   separated by spaces): a client id that is a service's name, or starts with it and a
 *   `-`, is refused at login (CONNACK "not authorised") unless the username is that
 *   service. Otherwise any logged-in client could take over ingest's persistent session,
 *   disconnecting ingest and receiving (and acknowledging) its unacknowledged readings.
 *   Mosquitto runs MOSQ_EVT_BASIC_AUTH before its password file, with the client id set;
 *   it does not run it on a listener that takes the username from a certificate, which
 *   therefore uses the username as client id (deploy/mosquitto.py).
 * - Retained messages on the device and gateway topics (`devices/...`, `gateways/...`)
 *   and the SensorThings topics (`.../v1.1/...`): refused by the ACL check (PUBACK 135 to
 *   an MQTT 5 client), for a publish and for a Will alike, since a retained reading or
 *   Observation is sent again on every subscription of ingest or the API.
 */

#include <stdbool.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mqtt_protocol.h>

#define PUBLISHER "stadspuls-publisher"
#define NOTIFICATION "stadspuls-notification"
#define SECRET_OPTION "secret"
#define SERVICES_OPTION "services"
#define MAX_SERVICES 16
#define MAC_HEX_LEN 64

/* What one listener's instance holds: its identifier, and HMAC keyed with the secret,
 * copied for each message. */
struct publisher {
	mosquitto_plugin_id_t *identifier;
	EVP_MAC *hmac;
	EVP_MAC_CTX *keyed;
	char *services_text;  /* the option's value, split in place by `services` */
	const char *services[MAX_SERVICES];
	int service_count;
};

/* Whether `list` holds the user properties `stadspuls-publisher` and
 * `stadspuls-notification`, in one walk of it. */
static void user_properties(const mosquitto_property *list, bool *publisher,
		bool *notification)
{
	const mosquitto_property *at = list;
	char *name = NULL;
	char *value = NULL;

	*publisher = *notification = false;
	while(!*publisher && (at = mosquitto_property_read_string_pair(
			at, MQTT_PROP_USER_PROPERTY, &name, &value, false)) != NULL){
		*publisher = strcmp(name, PUBLISHER) == 0;
		*notification = *notification || strcmp(name, NOTIFICATION) == 0;
		mosquitto_free(name);
		mosquitto_free(value);
		name = NULL;
		value = NULL;
		at = mosquitto_property_next(at);
	}
}

/* `<username>;<mac in hex>` into a new string, or NULL. */
static char *stamp(const struct publisher *self, const char *username,
		const struct mosquitto_evt_message *message)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char mac[EVP_MAX_MD_SIZE];
	size_t mac_len = 0;
	size_t name_len = strlen(username);
	char *value = NULL;
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(self->keyed);
	bool ok = ctx != NULL
		&& EVP_MAC_update(ctx, (const unsigned char *)username, name_len + 1)
		&& EVP_MAC_update(ctx, (const unsigned char *)message->topic,
			strlen(message->topic) + 1)
		&& EVP_MAC_update(ctx, message->payload, message->payloadlen)
		&& EVP_MAC_final(ctx, mac, &mac_len, sizeof(mac))
		&& mac_len * 2 == MAC_HEX_LEN;

	EVP_MAC_CTX_free(ctx);
	if(ok && (value = mosquitto_malloc(name_len + 1 + MAC_HEX_LEN + 1)) != NULL){
		memcpy(value, username, name_len);
		value[name_len] = ';';
		for(size_t i = 0; i < mac_len; i++){
			value[name_len + 1 + 2*i] = hex[mac[i] >> 4];
			value[name_len + 2 + 2*i] = hex[mac[i] & 0x0f];
		}
		value[name_len + 1 + MAC_HEX_LEN] = '\0';
	}
	return value;
}

static int on_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *message = event_data;
	const struct publisher *self = userdata;
	const char *username = mosquitto_client_username(message->client);
	char *value;
	bool claims_publisher;
	bool notification;
	int rc;

	(void)event;
	/* Only the SensorThings topics need it; device readings, the hot path, pass as sent. */
	if(message->topic == NULL || strstr(message->topic, "v1.1/") == NULL){
		return MOSQ_ERR_SUCCESS;
	}
	user_properties(message->properties, &claims_publisher, &notification);
	if(claims_publisher){
		return MOSQ_ERR_ACL_DENIED;
	}
	if(username == NULL){
		return MOSQ_ERR_SUCCESS;  /* nobody to name: only where anonymous clients may publish */
	}
	/* A notification (the bulk of these topics: several per reading) is named but not
	 * signed: the API passes notifications over unread, and no other subscriber holds the
	 * secret to check a signature by. */
	value = notification ? mosquitto_strdup(username) : stamp(self, username, message);
	if(value == NULL){
		return MOSQ_ERR_NOMEM;
	}
	rc = mosquitto_property_add_string_pair(
		&message->properties, MQTT_PROP_USER_PROPERTY, PUBLISHER, value);
	mosquitto_free(value);
	return rc;
}

/* The service whose client ids `client_id` is one of (its name, or its name and `-...`),
 * or NULL. */
static const char *reserved_by(const struct publisher *self, const char *client_id)
{
	for(int i = 0; i < self->service_count; i++){
		size_t len = strlen(self->services[i]);
		if(strncmp(client_id, self->services[i], len) == 0
				&& (client_id[len] == '\0' || client_id[len] == '-')){
			return self->services[i];
		}
	}
	return NULL;
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *auth = event_data;
	const struct publisher *self = userdata;
	const char *client_id = mosquitto_client_id(auth->client);
	const char *service;

	(void)event;
	if(client_id == NULL || (service = reserved_by(self, client_id)) == NULL){
		return MOSQ_ERR_PLUGIN_DEFER;  /* the password file decides */
	}
	if(auth->username != NULL && strcmp(auth->username, service) == 0){
		return MOSQ_ERR_PLUGIN_DEFER;  /* and checks the service's password */
	}
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "stadspuls publisher plugin: client id %s is "
			"reserved for %s; refused to %s", client_id, service,
			auth->username != NULL ? auth->username : "(no username)");
	return MOSQ_ERR_AUTH;
}

/* Topics whose messages are requests or readings: a retained one would be taken again at
 * every subscription (a reading stored twice, an Observation created twice). */
static bool refuses_retained(const char *topic)
{
	return strncmp(topic, "devices/", 8) == 0 || strncmp(topic, "gateways/", 9) == 0
		|| strstr(topic, "v1.1/") != NULL;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *check = event_data;

	(void)event;
	(void)userdata;
	if(check->access == MOSQ_ACL_WRITE && check->retain && check->topic != NULL
			&& refuses_retained(check->topic)){
		return MOSQ_ERR_ACL_DENIED;
	}
	return MOSQ_ERR_PLUGIN_DEFER;  /* the ACL file decides */
}

/* Split the services option in place into `self->services`. */
static int services(struct publisher *self, const char *text)
{
	char *saved = NULL;

	if(text == NULL){
		return MOSQ_ERR_SUCCESS;
	}
	if((self->services_text = mosquitto_strdup(text)) == NULL){
		return MOSQ_ERR_NOMEM;
	}
	for(char *name = strtok_r(self->services_text, " ,", &saved); name != NULL;
			name = strtok_r(NULL, " ,", &saved)){
		if(self->service_count == MAX_SERVICES){
			return MOSQ_ERR_INVAL;
		}
		self->services[self->service_count++] = name;
	}
	return MOSQ_ERR_SUCCESS;
}

static const char *option(const struct mosquitto_opt *opts, int opt_count, const char *key)
{
	for(int i = 0; i < opt_count; i++){
		if(strcmp(opts[i].key, key) == 0){
			return opts[i].value;
		}
	}
	return NULL;
}

static void release(struct publisher *self)
{
	EVP_MAC_CTX_free(self->keyed);
	EVP_MAC_free(self->hmac);
	mosquitto_free(self->services_text);
	mosquitto_free(self);
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
	const char *secret = option(opts, opt_count, SECRET_OPTION);
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	struct publisher *self;

	if(secret == NULL || secret[0] == '\0'){
		mosquitto_log_printf(MOSQ_LOG_ERR, "stadspuls publisher plugin: no plugin_opt_"
				SECRET_OPTION "; refusing to start");
		return MOSQ_ERR_INVAL;
	}
	if((self = mosquitto_calloc(1, sizeof(*self))) == NULL){
		return MOSQ_ERR_NOMEM;
	}
	/* Loaded once per listener, each time with an identifier of its own. */
	self->identifier = identifier;
	self->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	self->keyed = self->hmac != NULL ? EVP_MAC_CTX_new(self->hmac) : NULL;
	if(self->keyed == NULL || !EVP_MAC_init(self->keyed, (const unsigned char *)secret,
			strlen(secret), params)){
		mosquitto_log_printf(MOSQ_LOG_ERR, "stadspuls publisher plugin: no HMAC-SHA256");
		release(self);
		return MOSQ_ERR_UNKNOWN;
	}
	if(services(self, option(opts, opt_count, SERVICES_OPTION)) != MOSQ_ERR_SUCCESS){
		mosquitto_log_printf(MOSQ_LOG_ERR, "stadspuls publisher plugin: bad plugin_opt_"
				SERVICES_OPTION);
		release(self);
		return MOSQ_ERR_INVAL;
	}
	*user_data = self;
	if(mosquitto_callback_register(identifier, MOSQ_EVT_MESSAGE, on_message, NULL, self)
			|| mosquitto_callback_register(identifier, MOSQ_EVT_BASIC_AUTH, on_basic_auth,
				NULL, self)
			|| mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, on_acl_check,
				NULL, self)){
		return MOSQ_ERR_UNKNOWN;
	}
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *user_data, struct mosquitto_opt *opts, int opt_count)
{
	struct publisher *self = user_data;
	int rc;

	(void)opts;
	(void)opt_count;
	rc = mosquitto_callback_unregister(self->identifier, MOSQ_EVT_MESSAGE, on_message, NULL);
	mosquitto_callback_unregister(self->identifier, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
	mosquitto_callback_unregister(self->identifier, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
	release(self);
	return rc;
}
