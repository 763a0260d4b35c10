/**
 * Builders for the protobuf values apps pass most (conversations and
 * contents, protocol.md 4.1 and 4.2) and readers for what they get back.
 */
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";

import { utf8 } from "./bytes.js";
import {
  ContentSchema,
  ContentType,
  ConversationKind,
  ConversationSchema,
  CustomFormat,
  CustomSchema,
  MediaRefSchema,
  VoiceSchema,
  type ChannelEntry,
  type Content,
  type Conversation,
  type Custom,
  type Entry,
  type MediaRef,
  type Voice,
} from "./gen/bubble_pb.js";

/** A 1:1 conversation with `userId` (from this user's point of view). */
export function direct(userId: string): Conversation {
  return create(ConversationSchema, { kind: ConversationKind.DIRECT, id: userId });
}

/** A normal group (fanned out on write). */
export function group(groupId: string): Conversation {
  return create(ConversationSchema, { kind: ConversationKind.GROUP, id: groupId });
}

/** A super group (fanned out on read, by seq). */
export function superGroup(groupId: string): Conversation {
  return create(ConversationSchema, { kind: ConversationKind.SUPER_GROUP, id: groupId });
}

/** Where notices to one user arrive: `{kind: SYSTEM, id: "system"}` (protocol.md 4.3). */
export function systemConversation(): Conversation {
  return create(ConversationSchema, { kind: ConversationKind.SYSTEM, id: "system" });
}

/** A stable string for a conversation, e.g. "direct:bob", for maps and logs. */
export function conversationKey(conversation: Conversation | undefined): string {
  if (!conversation) return "none:";
  const kind = ConversationKind[conversation.kind] ?? String(conversation.kind);
  return `${kind.toLowerCase()}:${conversation.id}`;
}

/** Text content (at most the app's max_text_bytes, 16 KiB by default). */
export function textContent(text: string): Content {
  return create(ContentSchema, { type: ContentType.TEXT, body: utf8(text) });
}

/** A file uploaded elsewhere first, sent by reference. */
export function mediaContent(media: MessageInitShape<typeof MediaRefSchema>): Content {
  return create(ContentSchema, { type: ContentType.MEDIA, body: toBinary(MediaRefSchema, create(MediaRefSchema, media)) });
}

/** A short voice clip carried inline. */
export function voiceContent(voice: MessageInitShape<typeof VoiceSchema>): Content {
  return create(ContentSchema, { type: ContentType.VOICE, body: toBinary(VoiceSchema, create(VoiceSchema, voice)) });
}

/** A product's own JSON payload under a type name, e.g. "order.card". */
export function jsonContent(type: string, value: unknown): Content {
  const custom = create(CustomSchema, { format: CustomFormat.JSON, type, body: utf8(JSON.stringify(value)) });
  return create(ContentSchema, { type: ContentType.CUSTOM, body: toBinary(CustomSchema, custom) });
}

/** The text of a TEXT content (or of an entry carrying one); undefined otherwise. */
export function textOf(value: Content | Entry | ChannelEntry | undefined): string | undefined {
  const content = value?.$typeName === "bubble.v1.Content" ? value : value?.content;
  if (!content || content.type !== ContentType.TEXT) return undefined;
  return new TextDecoder().decode(content.body);
}

/** The MediaRef of a MEDIA content; undefined otherwise. */
export function mediaOf(content: Content | undefined): MediaRef | undefined {
  return content?.type === ContentType.MEDIA ? fromBinary(MediaRefSchema, content.body) : undefined;
}

/** The Voice of a VOICE content; undefined otherwise. */
export function voiceOf(content: Content | undefined): Voice | undefined {
  return content?.type === ContentType.VOICE ? fromBinary(VoiceSchema, content.body) : undefined;
}

/** The Custom of a CUSTOM content; undefined otherwise. */
export function customOf(content: Content | undefined): Custom | undefined {
  return content?.type === ContentType.CUSTOM ? fromBinary(CustomSchema, content.body) : undefined;
}
