import type { EvalIssue, EvalIssueCode, QuestionId } from './types.js';

/** Groups issues by code, so a summary says "3 missing images" once rather than three times. */
export class IssueCollector {
  private readonly byCode = new Map<EvalIssueCode, EvalIssue>();

  constructor(initial: readonly EvalIssue[] = []) {
    for (const issue of initial) for (const id of issue.questionIds) this.add(issue.code, id, issue.message);
  }

  /** `message` describes the issue in general; the first message given for a code is kept. */
  add(code: EvalIssueCode, questionId: QuestionId, message: string): void {
    const issue = this.byCode.get(code);
    if (issue) issue.questionIds.push(questionId);
    else this.byCode.set(code, { code, message, questionIds: [questionId] });
  }

  list(): EvalIssue[] {
    return [...this.byCode.values()];
  }
}
