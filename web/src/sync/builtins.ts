/**
 * The built-in collection definitions (core/src/main/resources/org/civicsync/core/collections/*.json),
 * used for validation before the first GET /v1/collections. A unit test keeps this copy equal to
 * those files.
 */
import type { CollectionDefinition } from './api';

export const BUILT_IN_COLLECTIONS: readonly CollectionDefinition[] = [
  {
    "name": "appointments",
    "title": "Clinic appointments",
    "description": "Bookings at rural health clinics, made offline by field staff.",
    "schema": {
      "type": "object",
      "required": [
        "patientName",
        "clinicId",
        "slotStart"
      ],
      "properties": {
        "patientName": {
          "type": "string",
          "minLength": 1,
          "maxLength": 200
        },
        "patientPhone": {
          "type": "string",
          "maxLength": 32
        },
        "clinicId": {
          "type": "string",
          "minLength": 1,
          "maxLength": 100
        },
        "slotStart": {
          "type": "string",
          "format": "date-time"
        },
        "status": {
          "enum": [
            "booked",
            "checked_in",
            "completed",
            "cancelled",
            "no_show"
          ],
          "default": "booked"
        },
        "notes": {
          "type": "array",
          "items": {
            "type": "string",
            "maxLength": 2000
          }
        }
      },
      "additionalProperties": false
    },
    "policy": {
      "default": "merge",
      "deleteVsUpdate": "deleteWins",
      "fields": {
        "status": {
          "kind": "monotonic",
          "transitions": {
            "booked": [
              "checked_in",
              "cancelled",
              "no_show"
            ],
            "checked_in": [
              "completed"
            ]
          }
        },
        "notes": {
          "kind": "appendOnly"
        }
      }
    },
    "rules": [
      {
        "kind": "capacity",
        "name": "one-booking-per-slot",
        "fields": [
          "clinicId",
          "slotStart"
        ],
        "limit": 1,
        "limitFrom": {
          "collection": "clinics",
          "match": {
            "clinicId": "clinicId"
          },
          "field": "slotCapacity"
        },
        "where": {
          "status": {
            "notIn": [
              "cancelled",
              "no_show"
            ]
          }
        },
        "message": "The {slotStart} slot at {clinicId} is full ({limit} booking(s) per slot). Please choose another time."
      }
    ],
    "scopeField": "clinicId",
    "access": {
      "fieldWorker": [
        "read",
        "create",
        "update"
      ],
      "supervisor": [
        "read",
        "create",
        "update",
        "delete",
        "resolve"
      ],
      "admin": [
        "read",
        "create",
        "update",
        "delete",
        "resolve"
      ],
      "auditor": []
    }
  },
  {
    "name": "clinics",
    "title": "Clinics",
    "description": "Health clinics and how many bookings each accepts per appointment slot (the per-clinic table the appointments capacity rule reads).",
    "schema": {
      "type": "object",
      "required": [
        "clinicId",
        "name"
      ],
      "properties": {
        "clinicId": {
          "type": "string",
          "minLength": 1,
          "maxLength": 100
        },
        "name": {
          "type": "string",
          "minLength": 1,
          "maxLength": 200
        },
        "district": {
          "type": "string",
          "maxLength": 100
        },
        "slotCapacity": {
          "type": "integer",
          "minimum": 1,
          "maximum": 1000,
          "default": 1
        }
      },
      "additionalProperties": false
    },
    "policy": {
      "default": "serverWins",
      "deleteVsUpdate": "deleteWins"
    },
    "rules": [
      {
        "kind": "unique",
        "name": "one-record-per-clinic",
        "fields": [
          "clinicId"
        ],
        "message": "Clinic {clinicId} is already registered."
      }
    ],
    "scopeField": "clinicId",
    "access": {
      "fieldWorker": [
        "read"
      ],
      "supervisor": [
        "read",
        "update"
      ],
      "admin": [
        "read",
        "create",
        "update",
        "delete",
        "resolve"
      ],
      "auditor": []
    }
  },
  {
    "name": "subsidy_claims",
    "title": "Agriculture subsidy claims",
    "description": "Fertilizer and seed subsidy claims captured by agricultural extension officers.",
    "schema": {
      "type": "object",
      "required": [
        "farmerId",
        "crop",
        "season"
      ],
      "properties": {
        "farmerId": {
          "type": "string",
          "minLength": 1,
          "maxLength": 100
        },
        "crop": {
          "type": "string",
          "minLength": 1,
          "maxLength": 100
        },
        "season": {
          "type": "string",
          "minLength": 1,
          "maxLength": 50
        },
        "areaHectares": {
          "type": "number",
          "exclusiveMinimum": 0
        },
        "amountRequested": {
          "type": "number",
          "minimum": 0
        },
        "status": {
          "enum": [
            "submitted",
            "verified",
            "approved",
            "rejected",
            "paid"
          ],
          "default": "submitted"
        }
      },
      "additionalProperties": false
    },
    "policy": {
      "default": "merge",
      "deleteVsUpdate": "deleteWins",
      "fields": {
        "status": {
          "kind": "monotonic",
          "transitions": {
            "submitted": [
              "verified"
            ],
            "verified": [
              "approved",
              "rejected"
            ],
            "approved": [
              "paid"
            ]
          }
        }
      }
    },
    "rules": [
      {
        "kind": "unique",
        "name": "one-open-claim",
        "fields": [
          "farmerId",
          "crop",
          "season"
        ],
        "where": {
          "status": {
            "in": [
              "submitted",
              "verified",
              "approved"
            ]
          }
        },
        "message": "Farmer {farmerId} already has an open {crop} claim for {season}."
      }
    ],
    "access": {
      "fieldWorker": [
        "read",
        "create",
        "update"
      ],
      "supervisor": [
        "read",
        "create",
        "update",
        "delete",
        "resolve"
      ],
      "admin": [
        "read",
        "create",
        "update",
        "delete",
        "resolve"
      ],
      "auditor": []
    }
  }
];
