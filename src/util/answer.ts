/** A person's answer to a `[y/N]` question: y or yes (any case) is yes; anything else, or nothing, is no. */
export const saysYes = (answer: string): boolean => /^y(es)?$/i.test(answer.trim())
